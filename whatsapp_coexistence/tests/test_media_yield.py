"""Media downloads yield to webhook ingest (``models/wac_message_media_yield.py``): real
``queue_job`` rows and deliveries in PostgreSQL, the download over HTTP from the fake Graph
server. No clock is measured: the job's answer and the rows' ``eta`` are."""

from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from odoo.addons.queue_job.exception import RetryableJobError

from ..const import CHANNEL_MEDIA, CHANNEL_WEBHOOK
from ..models.wac_message_media_yield import MAX_YIELD, YIELD_SECONDS
from .common import CLINIC, WacHttpCase

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8


@tagged("post_install", "-at_install")
class TestMediaYield(WacHttpCase):
    """While webhook work waits, a download postpones itself and the other waiting ones, for at
    most ``MAX_YIELD``. An HttpCase for its test cursor: the hold's own cursor then shares the
    test transaction instead of committing beside it."""

    def media_message(self, wamid):
        """An inbound image stored with its media pending, as the webhook job leaves it."""
        item = self.fake.add_media(CLINIC["waba_id"], "image/jpeg", data=JPEG)
        return self.env["wac.message"].sudo().create({
            "company_id": self.company_a.id, "account_id": self.account_a.id, "wamid": wamid,
            "direction": "in", "source": "customer", "message_type": "image",
            "media_id": item["id"], "media_mime_type": "image/jpeg", "media_state": "pending",
            "status": "received"})

    def webhook_job(self):
        """A delivery's job waiting in the webhook channel (stored, as the runner sees it)."""
        return self.env["wac.webhook.delivery"].with_delay(
            channel=CHANNEL_WEBHOOK, description="test delivery")._wac_dispatch()

    def media_job(self, message):
        message._wac_media_enqueue()
        return self.env["queue.job"].sudo().search([
            ("channel", "=", CHANNEL_MEDIA),
            ("identity_key", "=", "wac-media-%d-%s" % (message.id, message.media_id))])

    def run_download(self, message):
        """Run the job's method; return the ``RetryableJobError`` it raised, if any. Not
        ``assertRaises``: its savepoint would roll back the rows held on the side cursor."""
        try:
            message._wac_job_download_media(message.media_id)
        except RetryableJobError as error:
            return error
        return None

    def age(self, message=None, job=None, minutes=0):
        then = fields.Datetime.now() - timedelta(minutes=minutes)
        if message:
            self.env.cr.execute("UPDATE wac_message SET create_date = %s WHERE id = %s",
                                [then, message.id])
            message.invalidate_recordset(["create_date"])
        if job:
            self.env.cr.execute("UPDATE queue_job SET date_created = %s WHERE id = %s",
                                [then, job.id])
            job.invalidate_recordset(["date_created"])

    def test_a_download_yields_while_a_webhook_job_waits_and_holds_the_others(self):
        message, other = self.media_message("wamid.Y1"), self.media_message("wamid.Y2")
        other_job = self.media_job(other)
        self.webhook_job()
        before = fields.Datetime.now()
        error = self.run_download(message)
        self.assertIsInstance(error, RetryableJobError)
        self.assertEqual(error.seconds, YIELD_SECONDS)
        self.assertTrue(error.ignore_retry, "yielding consumes no try")
        self.assertIn("1 other downloads held", str(error))
        self.assertEqual(message.media_state, "pending")
        self.assertFalse(self.graph_requests(path_contains=message.media_id), "nothing fetched")
        other_job.invalidate_recordset(["eta"])
        self.assertEqual(other_job.state, "pending")
        self.assertGreaterEqual(other_job.eta, before + timedelta(seconds=YIELD_SECONDS - 1),
                                "the other download waits with it")

    def test_an_undispatched_delivery_is_webhook_work(self):
        message = self.media_message("wamid.Y3")
        self.env["wac.webhook.delivery"].sudo().create({
            "body": "{}", "body_sha256": "y3", "size": 2, "received_at": fields.Datetime.now()})
        self.assertIsInstance(self.run_download(message), RetryableJobError)
        self.assertEqual(message.media_state, "pending")

    def test_without_webhook_work_the_download_runs(self):
        message = self.media_message("wamid.Y4")
        later = self.webhook_job()
        self.env["queue.job"].sudo().search([("uuid", "=", later.uuid)]).write(
            {"eta": fields.Datetime.now() + timedelta(minutes=5)})  # a retry, not a burst
        self.assertIsNone(self.run_download(message))
        self.assertEqual(message.media_state, "downloaded")
        self.assertEqual(message.media_attachment_id.raw, JPEG)

    def test_the_yield_is_bounded(self):
        """A media that waited MAX_YIELD downloads whatever the backlog, and is no longer
        held by the others."""
        message, old = self.media_message("wamid.Y5"), self.media_message("wamid.Y6")
        old_job = self.media_job(old)
        minutes = MAX_YIELD.total_seconds() / 60 + 1
        self.age(message=message, job=old_job, minutes=minutes)
        self.webhook_job()
        self.assertIsNone(self.run_download(message))
        self.assertEqual(message.media_state, "downloaded")
        fresh = self.media_message("wamid.Y7")
        error = self.run_download(fresh)
        self.assertIn("0 other downloads held", str(error))
        old_job.invalidate_recordset(["eta"])
        self.assertFalse(old_job.eta, "a job queued more than MAX_YIELD ago is not held")
