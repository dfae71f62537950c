from odoo.tests import tagged

from odoo.addons.queue_job.jobrunner.channels import ChannelManager
from odoo.addons.queue_job.tests.common import trap_jobs

from ..const import CHANNEL_WEBHOOK, CHANNEL_WHATSAPP, PRIORITY_WEBHOOK
from . import payloads as P
from .common import WacHttpCase

#: The channels the README advises (ODOO_QUEUE_JOB_CHANNELS).
ADVISED_CHANNELS = (
    "root:3,root.whatsapp:3,root.whatsapp.webhook:2,root.whatsapp.history:1,root.whatsapp.media:1")


@tagged("post_install", "-at_install")
class TestWebhookChannel(WacHttpCase):
    """Webhook jobs run in a channel of their own, ahead of the sends waiting in
    ``root.whatsapp``: a send's status is not processed after every send queued behind it."""

    def test_status_delivery_jobs_land_on_the_webhook_channel(self):
        Delivery = self.env["wac.webhook.delivery"]
        payload = P.statuses(items=(("wamid.CHANNEL", "delivered", "1750030080"),))
        with trap_jobs() as trap:
            self.assertEqual(self.post_webhook(payload).status_code, 200)
            (dispatcher,) = trap.enqueued_jobs
        with trap_jobs() as trap:
            self.assertEqual(Delivery._wac_dispatch(), 1)
            (process,) = trap.enqueued_jobs
        delivery = Delivery.search([])
        with trap_jobs() as trap:
            delivery._wac_split()
            delivery.event_ids._wac_enqueue()  # an event retried in a job of its own
            (event_job,) = trap.enqueued_jobs
        self.assertEqual(
            [(job.method_name, job.channel, job.priority)
             for job in (dispatcher, process, event_job)],
            [("_wac_dispatch", CHANNEL_WEBHOOK, PRIORITY_WEBHOOK),
             ("_wac_process", CHANNEL_WEBHOOK, PRIORITY_WEBHOOK),
             ("_wac_job_process", CHANNEL_WEBHOOK, PRIORITY_WEBHOOK)])
        channel = self.env.ref("whatsapp_coexistence.queue_job_channel_whatsapp_webhook")
        self.assertEqual(channel.complete_name, CHANNEL_WEBHOOK)

    def test_status_job_runs_before_the_sends_queued_earlier(self):
        """queue_job's own scheduler, configured as advised: with 100 sends waiting, the next
        free slot goes to the status delivery that came after them, and a backlog of
        deliveries never holds every slot."""
        manager = ChannelManager()
        manager.simple_configure(ADVISED_CHANNELS)
        for seq in range(100):
            manager.notify("db", CHANNEL_WHATSAPP, "send-%d" % seq, seq, seq, 10, None,
                           "pending")
        for seq in range(100, 110):
            manager.notify("db", CHANNEL_WEBHOOK, "webhook-%d" % seq, seq, seq,
                           PRIORITY_WEBHOOK, None, "pending")
        started = [job.uuid for job in manager.get_jobs_to_run(now=1000)]
        self.assertEqual(started, ["webhook-100", "webhook-101", "send-0"])
