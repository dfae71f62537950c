from odoo.sql_db import db_connect
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.tests.common import trap_jobs

from ..const import CHANNEL_HISTORY
from ..models.wac_webhook_delivery import PROCESS_IDENTITY_KEY
from . import payloads as P
from .common import WacHttpCase

QUIET = ("odoo.addons.whatsapp_coexistence.models.wac_webhook_delivery",
         "odoo.addons.whatsapp_coexistence.models.wac_webhook_event")


@tagged("post_install", "-at_install")
class TestWebhookContinue(WacHttpCase):
    """A delivery whose changes meet another job's work is finished by one later run of its own
    job, not by a job per change: those jobs would write the same rows at once and conflict
    with each other, again and again (a fuzzed delivery of 500 changes on one template left
    401 jobs that took minutes to drain)."""

    def stored(self, payload):
        with trap_jobs():
            self.assertEqual(self.post_webhook(payload).status_code, 200)
        return self.env["wac.webhook.delivery"].search([], limit=1)

    def statuses_locked_elsewhere(self):
        """Another connection holds the status table: storing a status conflicts (waits
        0.2 s, then a lock timeout, classified *retry* like a serialization failure)."""
        other = db_connect(self.env.cr.dbname).cursor()
        self.addCleanup(other.close)
        other.execute("LOCK TABLE wac_message_status IN SHARE MODE")
        self.env.cr.execute("SET lock_timeout = '200ms'")
        self.addCleanup(self.env.cr.execute, "RESET lock_timeout")
        return other

    def test_conflicting_changes_wait_for_one_later_run(self):
        payload = P.inbound_text(wamid="wamid.FIRST")
        for n in range(3):
            payload["entry"] += P.statuses(
                items=(("wamid.S%d" % n, "delivered", "1750030080"),))["entry"]
        payload["entry"] += P.inbound_text(wamid="wamid.LAST")["entry"]
        delivery = self.stored(payload)
        other = self.statuses_locked_elsewhere()
        with mute_logger(*QUIET), self.assertNoLogs("odoo.sql_db", "ERROR"), \
                trap_jobs() as trap:
            delivery._wac_process()
            jobs = trap.enqueued_jobs
        events = delivery.event_ids.sorted("change_index")
        self.assertEqual(events.mapped("state"),
                         ["done", "pending", "pending", "pending", "done"],
                         "the changes without a conflict are processed at once")
        self.assertEqual(
            [(job.method_name, job.kwargs, job.identity_key, bool(job.eta)) for job in jobs],
            [("_wac_process", {"continued": True}, PROCESS_IDENTITY_KEY % delivery.id, True)],
            "one later run of the delivery's job for the three statuses")
        self.assertEqual(delivery.state, "processing")
        other.rollback()  # the other job is done
        with self.assertNoLogs("odoo.sql_db", "ERROR"), trap_jobs() as trap:
            delivery._wac_process(continued=True)
            trap.assert_jobs_count(0)
        self.assertEqual(set(events.mapped("state")), {"done"})
        self.assertEqual(delivery.state, "done")

    def test_a_run_without_progress_is_retried_by_queue_job_then_gives_each_its_job(self):
        delivery = self.stored(P.statuses(items=(("wamid.NONE", "sent", "1750030073"),)))
        delivery._wac_split()
        self.statuses_locked_elsewhere()
        delivery._wac_enqueue()  # a real queue_job row, as the runner would run it
        job = self.env["queue.job"].search(
            [("identity_key", "=", PROCESS_IDENTITY_KEY % delivery.id)])
        running = delivery.with_context(job_uuid=job.uuid)
        with mute_logger(*QUIET), self.assertRaises(RetryableJobError):
            running._wac_process()
        # Its last try: the change gets a job of its own, with tries of its own.
        job.write({"retry": job.max_retries - 1})
        with mute_logger(*QUIET), trap_jobs() as trap:
            running._wac_process()
            self.assertEqual([j.method_name for j in trap.enqueued_jobs], ["_wac_job_process"])
        self.assertEqual(delivery.event_ids.state, "pending")

    def test_history_chunks_of_a_delivery_share_one_job(self):
        """One job per delivery imports its chunks in order: 2,500 small chunks in one
        fuzzed delivery spent 69 of its job's 81 s enqueuing a job each."""
        payload = P.inbound_text(wamid="wamid.BESIDE")
        for order in (1, 2, 3):
            payload["entry"] += P.history_chunk(phase=0, chunk_order=order,
                                                progress=order * 30)["entry"]
        delivery = self.stored(payload)
        delivery._wac_process()  # real queue_job rows
        jobs = self.env["queue.job"].search([("model_name", "=", "wac.webhook.delivery"),
                                             ("method_name", "=", "_wac_job_history")])
        self.assertEqual((len(jobs), jobs.channel), (1, CHANNEL_HISTORY))
        self.assertFalse(self.env["queue.job"].search_count(
            [("method_name", "=", "_wac_job_process")]), "no job per chunk")
        history = delivery.event_ids.filtered(lambda e: e.field == "history")
        self.assertEqual(history.mapped("state"), ["pending"] * 3)
        # The minute cron leaves them to their job while it lives.
        self.env.cr.execute("UPDATE wac_webhook_event SET write_date = write_date - interval"
                            " '2 minutes' WHERE id = ANY(%s)", [history.ids])
        self.assertFalse(self.env["wac.webhook.event"]._wac_fail_abandoned())
        delivery._wac_job_history()
        history.invalidate_recordset()
        self.assertEqual(history.mapped("state"), ["done"] * 3)

    def test_a_job_past_its_time_slice_leaves_the_rest_to_its_continuation(self):
        """Odoo kills a request after limit_time_real: a delivery of 2,500 history chunks
        imported in one job was killed and restarted from its first chunk until it failed."""
        payload = P.history_chunk(phase=0, chunk_order=1, progress=30)
        for order in (2, 3):
            payload["entry"] += P.history_chunk(phase=0, chunk_order=order,
                                                progress=order * 30)["entry"]
        delivery = self.stored(payload)
        delivery._wac_split()
        history = delivery.event_ids.sorted("change_index")
        with trap_jobs() as trap:
            delivery._wac_process_inline(history, history=True, slice_seconds=0)
            jobs = trap.enqueued_jobs
        self.assertEqual(history.mapped("state"), ["done", "pending", "pending"])
        self.assertEqual([(job.method_name, job.channel) for job in jobs],
                         [("_wac_job_history", CHANNEL_HISTORY)])
