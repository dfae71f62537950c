from datetime import timedelta

from odoo import fields
from odoo.sql_db import db_connect
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.tests.common import trap_jobs

from ..const import CHANNEL_HISTORY, CHANNEL_WHATSAPP
from ..models.wac_webhook_event import HISTORY_PRIORITY, RETRY_SECONDS
from . import payloads as P
from .common import WacHttpCase

QUIET = ("odoo.addons.whatsapp_coexistence.models.wac_webhook_delivery",
         "odoo.addons.whatsapp_coexistence.models.wac_webhook_event")


@tagged("post_install", "-at_install")
class TestWebhookRecovery(WacHttpCase):
    """Errors are classified (a conflict is retried quietly and for a while, anything else is
    recorded at once), and the minute cron ends what a crash left behind."""

    def split(self, payload):
        """Store ``payload`` as Meta would, and split it into events without processing."""
        with trap_jobs():
            self.assertEqual(self.post_webhook(payload).status_code, 200)
        delivery = self.env["wac.webhook.delivery"].search([], limit=1)
        self.assertTrue(delivery._wac_split())
        return delivery

    def lock_table_elsewhere(self, table, mode):
        """Another connection holds ``table`` locked; this transaction waits 0.2 s at most."""
        other = db_connect(self.env.cr.dbname).cursor()
        self.addCleanup(other.close)
        self.addCleanup(other.rollback)
        other.execute("LOCK TABLE %s IN %s MODE" % (table, mode))
        self.env.cr.execute("SET lock_timeout = '200ms'")
        self.addCleanup(self.env.cr.execute, "RESET lock_timeout")

    def job_of(self, event, tries_before):
        """The event's real queue_job row, at its ``tries_before + 1``-th try."""
        event._wac_enqueue()  # once: queue_job keeps one waiting job per identity key
        job = self.env["queue.job"].search([("identity_key", "=", "wac-event-%d" % event.id)])
        job.write({"retry": tries_before})
        return event.with_context(job_uuid=job.uuid)

    # ------------------------------------------------------------------ classification

    def test_sender_without_digits_is_stored_without_contact(self):
        """``"abc"`` used to collide with a contact whose phone key is empty, and was retried
        as a transient error until its job failed, leaving the event pending."""
        self.env["wac.contact"].create({"company_id": self.company_a.id, "phone_key": "",
                                        "wa_id": "+"})
        with mute_logger(*QUIET), self.processing():
            self.post_webhook(P.inbound_text(wamid="wamid.ABC", from_="abc"))
            self.post_webhook(P.inbound_text(wamid="wamid.XYZ", from_="xyz"))
        messages = self.env["wac.message"].search([("wamid", "in", ("wamid.ABC", "wamid.XYZ"))])
        self.assertEqual(len(messages), 2)
        self.assertFalse(messages.contact_id)
        events = self.env["wac.webhook.event"].search([])
        self.assertEqual(set(events.mapped("state")), {"done"})
        self.assertEqual(set(events.delivery_id.mapped("state")), {"done"})

    def test_message_stored_meanwhile_by_another_job_is_already_there(self):
        """A unique key that means "stored by someone else" is success, not a retry."""
        main = self.env.ref("base.main_company")
        account = self._wac_account(main, {
            "waba_id": "302290129340398", "phone_number_id": "306540352242922",
            "display_phone_number": "+55 31 99999-0000", "token": "EAAGfakemain00000000000003"})
        # Another job stored the message and committed, after this transaction's snapshot.
        other = db_connect(self.env.cr.dbname).cursor()
        self.addCleanup(other.close)
        other.execute(
            "INSERT INTO wac_message (company_id, wamid, direction, source, body)"
            " VALUES (%s, 'wamid.MEANWHILE', 'in', 'customer', 'first copy') RETURNING id",
            [main.id])
        message_id = other.fetchone()[0]
        other.commit()
        self.addCleanup(lambda: (other.execute("DELETE FROM wac_message WHERE id = %s",
                                               [message_id]), other.commit()))
        payload = P.inbound_text(wamid="wamid.MEANWHILE", phone_number_id="306540352242922",
                                 waba_id="302290129340398")
        payload["entry"][0]["changes"].append(P.inbound_text(
            wamid="wamid.BESIDE", phone_number_id="306540352242922")["entry"][0]["changes"][0])
        with mute_logger(*QUIET, "odoo.sql_db"), self.processing():
            self.post_webhook(payload)
        events = self.env["wac.webhook.event"].search([("account_id", "=", account.id)])
        self.assertEqual(events.mapped("state"), ["done", "done"], events.mapped("error"))
        self.assertTrue(self.env["wac.message"].search([("wamid", "=", "wamid.BESIDE")]))
        self.assertFalse(self.env["wac.message"].search([("wamid", "=", "wamid.MEANWHILE")]),
                         "the insert met the other job's row: only that one exists")

    def test_conflict_is_retried_quietly_with_jitter_then_recorded(self):
        delivery = self.split(P.statuses(items=(("wamid.LOCKED", "sent", "1750030073"),)))
        event = delivery.event_ids
        self.lock_table_elsewhere("wac_message_status", "SHARE")
        delays = set()
        for _attempt in range(3):
            with self.assertNoLogs("odoo.sql_db", "ERROR"), \
                    self.assertRaises(RetryableJobError) as caught:
                self.job_of(event, tries_before=0)._wac_job_process()
            delays.add(caught.exception.seconds)
            self.assertEqual(event.state, "pending")
        self.assertTrue(all(RETRY_SECONDS <= d <= 2 * RETRY_SECONDS for d in delays), delays)
        # The last try records the conflict instead of leaving the event pending forever.
        with mute_logger(*QUIET):
            self.job_of(event, tries_before=4)._wac_job_process()
        self.assertEqual(event.state, "failed")
        self.assertIn("Gave up after 5 tries: LockNotAvailable", event.error)

    def test_history_never_writes_the_account_row(self):
        """The account row is written by many jobs (sends, account updates): a history job or
        an out-of-band error that writes it gets their serialization failures. Here every
        update of the row fails as it would when another job wrote it first."""
        self.env.cr.execute("""
            CREATE FUNCTION wac_test_account_written() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'wac_account written by another job'
                      USING ERRCODE = 'serialization_failure';
            END $$;
            CREATE TRIGGER wac_test_account_written BEFORE UPDATE ON wac_account
               FOR EACH ROW EXECUTE FUNCTION wac_test_account_written();
        """)
        first = P.history_chunk(phase=1, chunk_order=1, progress=40)
        second = P.history_chunk(phase=1, chunk_order=2, progress=100, threads=[])
        errors = P.statuses()
        errors["entry"][0]["changes"][0]["value"]["errors"] = [P.status_error(code=131000)]
        with mute_logger(*QUIET), self.processing():
            for payload in (first, errors, second):
                self.assertEqual(self.post_webhook(payload).status_code, 200)
        events = self.env["wac.webhook.event"].search([])
        self.assertEqual(set(events.mapped("state")), {"done"}, events.mapped("error"))
        self.assertRecordValues(self.account_a, [{
            "history_state": "done", "history_progress": 100, "history_phase": 1,
            "history_chunks": 2, "history_messages": 4}])

    def test_reprocessed_mixed_batch_gives_each_event_its_channel(self):
        payload = P.inbound_text(wamid="wamid.MIXED")
        payload["entry"] += P.history_chunk()["entry"] + P.statuses()["entry"]
        delivery = self.split(payload)
        events = delivery.event_ids.sorted("change_index")
        events.write({"state": "failed", "error": "as if"})
        with trap_jobs() as trap:
            delivery.action_reprocess()
            jobs = {job.recordset: job for job in trap.enqueued_jobs}
        self.assertEqual([(jobs[e].channel, jobs[e].priority) for e in events], [
            (CHANNEL_WHATSAPP, 10), (CHANNEL_HISTORY, HISTORY_PRIORITY), (CHANNEL_WHATSAPP, 10)])
        self.assertEqual(delivery.state, "processing")

    # ------------------------------------------------------------------ the minute cron

    def test_cron_ends_what_a_crash_left(self):
        Delivery = self.env["wac.webhook.delivery"]
        # 1. A delivery whose processing job ran out of tries.
        dead = self.split(P.inbound_text(wamid="wamid.DEAD"))
        dead.event_ids.unlink()
        dead._wac_enqueue()
        job = self.env["queue.job"].search([("identity_key", "=", "wac-delivery-%d" % dead.id)])
        job.write({"state": "failed", "exc_name": "FailedJobError",
                   "exc_message": "Max. retries (5) reached"})
        # 2. A delivery whose event was left pending without a job (a crash).
        crashed = self.split(P.inbound_text(wamid="wamid.CRASHED"))
        # 3. A delivery still waiting for its job: left alone.
        waiting = self.split(P.inbound_text(wamid="wamid.WAITING"))
        waiting.event_ids.unlink()
        waiting._wac_enqueue()
        crashed.write({"state": "processing"})
        old = fields.Datetime.now() - timedelta(minutes=2)
        self.env.cr.execute("UPDATE wac_webhook_delivery SET dispatched_at = %s", [old])
        self.env.cr.execute("UPDATE wac_webhook_event SET write_date = %s", [old])
        self.env.invalidate_all()

        Delivery._wac_cron_dispatch()
        self.assertEqual(dead.state, "failed")
        self.assertIn("FailedJobError Max. retries (5) reached", dead.error)
        self.assertEqual((crashed.event_ids.state, crashed.state), ("failed", "failed"))
        self.assertIn("the job is gone", crashed.event_ids.error)
        self.assertEqual(waiting.state, "received")
        # A person reprocesses both: the messages arrive.
        with self.processing():
            (dead | crashed).action_reprocess()
        with self.processing():
            Delivery._wac_cron_dispatch()
        self.assertEqual((dead.state, crashed.state), ("done", "done"))
        self.assertEqual(self.env["wac.message"].search_count(
            [("wamid", "in", ("wamid.DEAD", "wamid.CRASHED"))]), 2)
