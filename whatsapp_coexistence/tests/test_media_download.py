"""Inbound media kept: signed media webhooks from the fake Graph server, through Odoo's HTTP
server, then the download job on its channel; the file ends in an ``ir.attachment``."""

import base64

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job
from odoo.addons.queue_job.tests.common import trap_jobs

from ..const import CHANNEL_MEDIA, WEBHOOK_ROUTE
from ..models.wac_message_media import MAX_TRIES
from ..tools.fake_graph.media import media_message_webhook
from ..tools.wa_cloud.media import MB
from . import payloads as P
from .common import CLINIC, WacHttpCase

SENDER = "5511987651234"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40


@tagged("post_install", "-at_install")
class TestMediaDownload(WacHttpCase):
    """Each type kept; limits, allowlist, expiry, retries, history and companies."""

    def setUp(self):
        super().setUp()
        self.fake.configure(webhook_url=self.base_url() + WEBHOOK_ROUTE)

    def receive(self, kind, mime, **kwargs):
        """The customer sends a media: Meta's signed webhook, then every job it enqueues."""
        with self.processing():
            result = self.fake.send_media(CLINIC["phone_number_id"], SENDER, kind, mime,
                                          **kwargs)
        self.assertEqual(result["status"], 200, result["body"])
        return self.message(result["wamid"]), result["media"]

    def message(self, wamid):
        return self.env["wac.message"].search([("wamid", "=", wamid)])

    def deliver_until_error(self, payload):
        """Deliver and run the jobs; return the error a job raised (the runner would postpone
        that job). Not ``assertRaises``: it rolls back what the jobs stored before."""
        try:
            self.deliver_signed(payload)
        except RetryableJobError as error:
            return error
        return None

    def downloads(self):
        return self.graph_requests(path_contains="/_media/")

    def test_media_kept_for_each_type(self):
        cases = [("image", "image/jpeg", "Raio-X", None, "Raio-X.jpg"),
                 ("document", "application/pdf", "Resultado", "exame.pdf", "exame.pdf"),
                 ("audio", "audio/ogg; codecs=opus", None, None, ".ogg"),
                 ("video", "video/mp4", None, None, ".mp4"),
                 ("sticker", "image/webp", None, None, ".webp")]
        for kind, mime, caption, filename, name in cases:
            with self.subTest(kind=kind):
                content = kind.encode() + JPEG
                message, media = self.receive(kind, mime, data=content, caption=caption,
                                              filename=filename)
                attachment = message.media_attachment_id
                self.assertRecordValues(message, [{
                    "media_state": "downloaded", "media_reason": False,
                    "media_id": media["id"], "company_id": self.company_a.id}])
                self.assertEqual(attachment.raw, content)
                self.assertRecordValues(attachment, [{
                    "res_model": "wac.message", "res_id": message.id,
                    "company_id": self.company_a.id, "mimetype": mime.split(";")[0],
                    "file_size": len(content), "type": "binary"}])
                self.assertTrue(attachment.store_fname and attachment.checksum)
                self.assertTrue(attachment.name.endswith(name), attachment.name)

    def test_the_job_runs_on_the_media_channel_after_the_message_is_stored(self):
        item = self.fake.add_media(CLINIC["waba_id"], "image/jpeg", data=JPEG)
        with self.processing() as trap:
            phone = dict(self.fake.state.phones[CLINIC["phone_number_id"]])
            wamid, payload = media_message_webhook(phone, SENDER, "image", item)
            self.assertEqual(self.post_webhook(payload).status_code, 200)
            self.assertFalse(self.downloads(), "nothing is fetched in the webhook request")
        self.assertEqual(trap.enqueued_jobs, [])  # all performed
        message = self.message(wamid)
        self.assertEqual(message.media_state, "downloaded")
        jobs = self.env["queue.job"].sudo().search([("channel", "=", CHANNEL_MEDIA)])
        self.assertFalse(jobs, "trapped jobs are performed, not stored")
        self.assertEqual(len(self.downloads()), 1)

    def test_a_duplicate_webhook_downloads_once(self):
        item = self.fake.add_media(CLINIC["waba_id"], "image/jpeg", data=JPEG)
        phone = dict(self.fake.state.phones[CLINIC["phone_number_id"]])
        _wamid, payload = media_message_webhook(phone, SENDER, "image", item)
        self.deliver_signed(payload, payload)
        self.deliver_signed(payload)
        self.assertEqual(len(self.downloads()), 1)

    def test_over_the_size_limit_nothing_is_kept(self):
        message, _media = self.receive("image", "image/jpeg", size=6 * MB)
        self.assertEqual(message.media_state, "too_large")
        self.assertIn("5.0 MB", message.media_reason)
        self.assertFalse(message.media_attachment_id)
        self.assertFalse(self.env["ir.attachment"].search([("res_model", "=", "wac.message")]))
        self.assertFalse(self.downloads(), "refused on Meta's announced size, before reading")

    def test_a_type_outside_the_allowlist_is_refused(self):
        message, _media = self.receive("document", "application/x-msdownload",
                                       data=b"MZ\x90\x00", filename="receita.exe")
        self.assertEqual(message.media_state, "refused")
        self.assertIn("application/x-msdownload", message.media_reason)
        self.assertFalse(message.media_attachment_id)
        self.assertFalse(self.graph_requests(path_contains=message.media_id),
                         "a refused type is not even asked for")

    def test_an_expired_media_id_is_a_visible_final_state(self):
        item = self.fake.add_media(CLINIC["waba_id"], "image/jpeg", data=JPEG)
        self.fake.media.remove(item["id"])  # Meta forgot it
        phone = dict(self.fake.state.phones[CLINIC["phone_number_id"]])
        wamid, payload = media_message_webhook(phone, SENDER, "image", item)
        self.deliver_signed(payload)
        message = self.message(wamid)
        self.assertEqual(message.media_state, "expired")
        self.assertIn("[100]", message.media_reason)
        self.assertFalse(message.media_attachment_id)

    def test_a_5xx_is_retried_then_kept(self):
        item = self.fake.add_media(CLINIC["waba_id"], "image/jpeg", data=JPEG)
        self.fake.add_fault(match={"path": "/_media/"}, status=503)
        phone = dict(self.fake.state.phones[CLINIC["phone_number_id"]])
        wamid, payload = media_message_webhook(phone, SENDER, "image", item)
        self.assertIsInstance(self.deliver_until_error(payload), RetryableJobError)
        message = self.message(wamid)
        self.assertEqual(message.media_state, "pending")
        message._wac_job_download_media(item["id"])
        self.assertEqual(message.media_state, "downloaded")
        self.assertEqual(message.media_attachment_id.raw, JPEG)
        self.assertEqual([r["status"] for r in self.downloads()], [503, 200])

    def test_an_expired_link_is_fetched_again_on_retry(self):
        self.fake.configure(media_url_ttl=0)
        item = self.fake.add_media(CLINIC["waba_id"], "image/jpeg", data=JPEG)
        phone = dict(self.fake.state.phones[CLINIC["phone_number_id"]])
        wamid, payload = media_message_webhook(phone, SENDER, "image", item)
        self.assertIsInstance(self.deliver_until_error(payload), RetryableJobError)
        self.fake.configure(media_url_ttl=300)
        message = self.message(wamid)
        message._wac_job_download_media(item["id"])
        self.assertEqual(message.media_state, "downloaded")
        self.assertEqual(len(self.graph_requests(path_contains=item["id"], method="GET")), 4,
                         "URL and download, twice")

    def test_the_last_try_records_the_failure(self):
        item = self.fake.add_media(CLINIC["waba_id"], "image/jpeg", data=JPEG)
        self.fake.add_fault(match={"path": "/_media/"}, truncate=100, times=None)
        phone = dict(self.fake.state.phones[CLINIC["phone_number_id"]])
        wamid, payload = media_message_webhook(phone, SENDER, "image", item)
        self.assertIsInstance(self.deliver_until_error(payload), RetryableJobError)
        message = self.message(wamid)
        self.assertEqual(message.media_state, "pending")
        # The job as the runner finds it before its last try: stored, with its tries counted.
        message._wac_media_enqueue()
        job_row = self.env["queue.job"].sudo().search([("channel", "=", CHANNEL_MEDIA)])
        self.assertEqual(len(job_row), 1)
        job_row.retry = MAX_TRIES - 1
        job_row.flush_recordset()
        Job.load(self.env, job_row.uuid).perform()
        self.assertEqual(message.media_state, "failed")
        self.assertIn("after %d tries" % MAX_TRIES, message.media_reason)
        self.assertRegex(message.media_reason, "interrupted|truncated")
        self.assertFalse(message.media_attachment_id)
        # A manager asks again once Meta is fine.
        self.fake.clear_faults()
        with self.assertRaises(UserError):
            message.with_user(self.user_a).action_wac_media_retry()
        with trap_jobs() as trap:
            message.with_user(self.manager_a).action_wac_media_retry()
            trap.assert_jobs_count(1, only=message._wac_job_download_media)
            trap.perform_enqueued_jobs()
        self.assertEqual(message.media_state, "downloaded")

    def test_a_history_placeholder_is_upgraded_and_downloaded(self):
        self.deliver_signed(P.history_chunk(phase=0, chunk_order=1, progress=100))
        placeholder = self.message(P.PLACEHOLDER_WAMID)
        self.assertRecordValues(placeholder, [{"is_placeholder": True, "media_state": False}])
        with self.processing():
            self.fake.send_history_media(CLINIC["phone_number_id"], P.USER_WA_ID,
                                         P.PLACEHOLDER_WAMID, "image", "image/png",
                                         data=b"\x89PNG old photo", caption="Vaso")
        self.assertRecordValues(placeholder, [{
            "is_placeholder": False, "message_type": "image", "media_state": "downloaded"}])
        self.assertEqual(placeholder.media_attachment_id.raw, b"\x89PNG old photo")

    def test_a_company_never_reads_another_company_media(self):
        user_b = new_test_user(self.env, "wac_media_user_b", groups="base.group_user,"
                               "whatsapp_coexistence.whatsapp_coexistence_group_user",
                               company_id=self.company_b.id, company_ids=self.company_b.ids)
        message, _media = self.receive("document", "application/pdf", data=b"%PDF laudo",
                                       filename="laudo.pdf")
        attachment = message.media_attachment_id
        self.assertEqual(attachment.with_user(self.user_a).datas,
                         base64.b64encode(b"%PDF laudo"))
        Attachment = self.env["ir.attachment"].with_user(user_b)
        self.assertFalse(Attachment.search([("res_model", "=", "wac.message")]))
        with self.assertRaises(AccessError):
            attachment.with_user(user_b).read(["datas"])
        response = self.url_open("/web/content/%d" % attachment.id)
        self.assertNotEqual(response.content, b"%PDF laudo", "no access without a session")

    def test_without_a_token_the_failure_says_what_to_fix(self):
        item = self.fake.add_media(CLINIC["waba_id"], "image/jpeg", data=JPEG)
        self.account_a.sudo().access_token_enc = False
        message = self.env["wac.message"].sudo().create({
            "company_id": self.company_a.id, "account_id": self.account_a.id,
            "wamid": "wamid.media.no.token", "direction": "in", "source": "customer",
            "message_type": "image", "media_id": item["id"], "media_mime_type": "image/jpeg",
            "media_state": "pending", "status": "received"})
        message._wac_job_download_media(item["id"])
        self.assertEqual(message.media_state, "failed")
        self.assertIn("access token", message.media_reason)
        self.assertFalse(self.graph_requests(path_contains=item["id"]))
