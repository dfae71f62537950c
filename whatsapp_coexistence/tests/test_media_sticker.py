"""Inbound stickers kept within the limit of their kind: Meta's signed sticker webhook (with
its ``animated`` flag) through Odoo's HTTP server, then the download job."""

from odoo.tests import tagged

from ..const import WEBHOOK_ROUTE
from ..tools.fake_graph.media import media_message_webhook
from .common import CLINIC, WacHttpCase

SENDER = "5511987651234"
KB = 1024


@tagged("post_install", "-at_install")
class TestMediaSticker(WacHttpCase):
    """Static stickers: 100 KB; animated ones, and those the webhook does not qualify: 500 KB."""

    def setUp(self):
        super().setUp()
        self.fake.configure(webhook_url=self.base_url() + WEBHOOK_ROUTE)

    def receive_sticker(self, size, animated):
        """The customer sends a sticker of ``size`` bytes; ``animated`` as the webhook says it
        (``None``: the key is absent)."""
        item = self.fake.add_media(CLINIC["waba_id"], "image/webp", size=size)
        phone = dict(self.fake.state.phones[CLINIC["phone_number_id"]])
        wamid, payload = media_message_webhook(phone, SENDER, "sticker", item)
        sticker = payload["entry"][0]["changes"][0]["value"]["messages"][0]["sticker"]
        sticker.pop("animated", None)
        if animated is not None:
            sticker["animated"] = animated
        self.deliver_signed(payload)
        return self.env["wac.message"].search([("wamid", "=", wamid)])

    def test_a_static_sticker_of_200_kb_is_refused_with_its_limit(self):
        message = self.receive_sticker(200 * KB, animated=False)
        self.assertRecordValues(message, [{
            "message_type": "sticker", "sticker_kind": "static", "media_state": "too_large",
            "media_attachment_id": False}])
        self.assertIn("static sticker", message.media_reason)
        self.assertIn("(100 KB)", message.media_reason)
        self.assertFalse(self.graph_requests(path_contains="/_media/"),
                         "refused on Meta's announced size, before reading the file")

    def test_an_animated_sticker_of_200_kb_is_kept(self):
        message = self.receive_sticker(200 * KB, animated=True)
        self.assertRecordValues(message, [{
            "sticker_kind": "animated", "media_state": "downloaded", "media_reason": False}])
        self.assertEqual(message.media_attachment_id.file_size, 200 * KB)
        self.assertEqual(message.media_attachment_id.mimetype, "image/webp")

    def test_a_sticker_of_unknown_kind_gets_the_larger_limit(self):
        kept = self.receive_sticker(200 * KB, animated=None)
        self.assertRecordValues(kept, [{"sticker_kind": False, "media_state": "downloaded"}])
        refused = self.receive_sticker(600 * KB, animated=None)
        self.assertEqual(refused.media_state, "too_large")
        self.assertIn("animated stickers (500 KB)", refused.media_reason)
