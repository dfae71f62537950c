"""Outbound media on real Odoo: attachments uploaded to the fake Graph server (multipart, over
HTTP), refused before any request when Meta would refuse them, reused while Meta keeps them,
and sent by id in Meta's wire format."""

import base64
from datetime import timedelta

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..tools.wa_cloud.errors import RetryableError
from ..tools.wa_cloud.media_limits import MB
from .common import CLINIC, SALON, WacTransactionCase

TO = "5511987651234"
FILES = {
    "image": ("raio-x.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\x01" * 3000),
    "document": ("guia.pdf", "application/pdf", b"%PDF-1.7\n" + b"\x02" * 5000),
    "audio": ("nota.ogg", "audio/ogg", b"OggS" + b"\x03" * 4000),
    "video": ("exame.mp4", "video/mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x04" * 6000),
}


@tagged("post_install", "-at_install")
class TestMediaUpload(WacTransactionCase):

    def attachment(self, name, mimetype, content, company=None):
        return self.env["ir.attachment"].create({
            "name": name, "mimetype": mimetype, "datas": base64.b64encode(content),
            "company_id": (company or self.company_a).id})

    def test_each_media_type_is_uploaded_then_sent_by_id(self):
        client = self.account_a._wac_client()
        for kind, (name, mimetype, content) in FILES.items():
            with self.subTest(kind=kind):
                attachment = self.attachment(name, mimetype, content)
                message = self.account_a._wac_media_message(attachment, TO, caption="Olá")
                stored = self.fake.upload(message.vals["media_id"])
                self.assertEqual((stored["content"], stored["kind"], stored["filename"]),
                                 (content, kind, name))
                self.assertEqual(stored["phone_number_id"], CLINIC["phone_number_id"])
                client.send_message(self.account_a.phone_number_id, message.payload)
                sent = self.fake.messages()[-1]["payload"]
                expected = {"id": message.vals["media_id"]}
                if kind != "audio":
                    expected["caption"] = "Olá"
                if kind == "document":
                    expected["filename"] = name
                self.assertEqual(sent, {"messaging_product": "whatsapp",
                                        "recipient_type": "individual", "to": TO,
                                        "type": kind, kind: expected})
                self.assertEqual(message.vals["message_type"], kind)
                self.assertEqual(message.vals["body"], False if kind == "audio" else "Olá")
        uploads = self.graph_requests(path_contains="/media", method="POST")
        self.assertEqual(len(uploads), 4)
        for request in uploads:
            self.assertTrue(request["headers"]["Content-Type"].startswith(
                "multipart/form-data"))
            self.assertEqual(request["json"]["messaging_product"], "whatsapp")

    def test_file_over_the_limit_is_refused_before_any_request(self):
        attachment = self.attachment("foto.png", "image/png", b"\x89PNG" + b"\x00" * (5 * MB))
        with self.assertRaisesRegex(UserError, r"foto\.png is 5\.0 MB, over WhatsApp's limit "
                                               r"of 5 MB for image files"):
            self.account_a._wac_upload_media(attachment)
        self.assertFalse(self.graph_requests(path_contains="/media"))
        self.assertFalse(self.env["wac.media.upload"].search([]))

    def test_refused_type_says_what_to_send_and_sends_nothing(self):
        attachment = self.attachment("anim.gif", "image/gif", b"GIF89a" + b"\x00" * 100)
        with self.assertRaisesRegex(UserError, r"does not accept anim\.gif \(image/gif\)\. "
                                               r"Send a JPEG or PNG image"):
            self.account_a._wac_media_message(attachment, TO)
        pdf = self.attachment("guia.pdf", "application/pdf", b"%PDF-1.7 x")
        with self.assertRaisesRegex(UserError, "guia.pdf is not an image file"):
            self.account_a._wac_upload_media(pdf, kind="image")
        self.assertFalse(self.graph_requests(path_contains="/media"))

    def test_same_file_reuses_its_media_id_while_meta_keeps_it(self):
        name, mimetype, content = FILES["document"]
        first = self.account_a._wac_upload_media(self.attachment(name, mimetype, content))
        again = self.account_a._wac_upload_media(self.attachment("copy.pdf", mimetype, content))
        self.assertEqual(first, again)
        self.assert_graph_called("POST", "/media", count=1)
        upload = self.env["wac.media.upload"].search([("media_id", "=", first)])
        upload.uploaded_at = fields.Datetime.now() - timedelta(days=29, minutes=1)
        later = self.account_a._wac_upload_media(self.attachment(name, mimetype, content))
        self.assertNotEqual(later, first)
        self.assert_graph_called("POST", "/media", count=2)

    def test_another_company_uploads_its_own_copy(self):
        name, mimetype, content = FILES["image"]
        mine = self.account_a._wac_upload_media(self.attachment(name, mimetype, content))
        theirs = self.account_b._wac_upload_media(
            self.attachment(name, mimetype, content, company=self.company_b))
        self.assertNotEqual(mine, theirs)
        self.assertEqual(self.fake.upload(theirs)["phone_number_id"], SALON["phone_number_id"])
        uploads = self.env["wac.media.upload"].with_user(self.user_a).search([])
        self.assertEqual(uploads.mapped("media_id"), [mine])

    def test_upload_fault_is_meta_error_and_caches_nothing(self):
        self.fake.add_fault(match={"path": "/media"}, status=503, code=131016)
        name, mimetype, content = FILES["video"]
        with self.assertRaises(RetryableError):
            self.account_a._wac_upload_media(self.attachment(name, mimetype, content))
        self.assertFalse(self.env["wac.media.upload"].search([]))
        self.assertEqual(self.fake.uploads(), [])
