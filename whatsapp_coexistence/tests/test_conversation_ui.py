"""The receptionist's conversation in the browser: from the appointment to a read reply."""

import base64

from odoo import fields
from odoo.tests import tagged
from odoo.tools import file_open

from ..const import WEBHOOK_ROUTE
from . import payloads as p
from .common import CLINIC, WacHttpCase
from .common_automation import WacAutomationMixin
from .common_console import ScreenshotMixin

MARIA_WA_ID = "551191234567"
# A 1x1 PNG: what M's media download stores as the photo's attachment.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
# The quote the receptionist attaches: the tour fetches it from this URL into the file input.
QUOTE_NAME = "orcamento.pdf"
QUOTE_URL = "/whatsapp_coexistence/static/tests/files/%s" % QUOTE_NAME
with file_open("whatsapp_coexistence/static/tests/files/%s" % QUOTE_NAME, "rb") as quote:
    QUOTE_PDF = quote.read()


@tagged("post_install", "-at_install")
class TestConversationUi(ScreenshotMixin, WacAutomationMixin, WacHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._wac_automation_setup()
        cls.user_a.write({"password": "wac_user_a", "notification_type": "inbox"})
        cls.account_a.conversation_team_ids = cls.user_a

    def customer_sends_photo(self):
        """A signed image webhook, then the file as the media download stores it."""
        message = {"from": MARIA_WA_ID, "id": "wamid.PHOTO1", "type": "image",
                   "timestamp": str(int(fields.Datetime.now().timestamp())),
                   "image": {"caption": "Foto da receita", "mime_type": "image/png",
                             "sha256": "c2hhMjU2", "id": "1479537139650973"}}
        self.deliver_signed(p.envelope("messages", p.message_value(
            [message], CLINIC["phone_number_id"], contacts=[p.contact(MARIA_WA_ID,
                                                                     "Maria Silva")]),
            waba_id=CLINIC["waba_id"]))
        photo = self.env["wac.message"].search([("wamid", "=", "wamid.PHOTO1")])
        self.env["ir.attachment"].create({
            "name": "receita.png", "raw": PNG, "mimetype": "image/png",
            "res_model": "wac.message", "res_id": photo.id,
            "company_id": self.company_a.id})
        return photo

    def shoot_composer(self, thread_url):
        """The composer with the answer written and the quote attached (not sent): the
        file goes through the real file input, as a person picking it."""
        selector = ".modal div[name=attachment_ids] input.o_input_file"
        with self.page("wac_user_a", thread_url) as browser:
            self.click(browser, ".o_form_view button[name=action_reply]")
            self.wait_for(browser, selector)
            browser._websocket_request("Runtime.evaluate", params={
                "awaitPromise": True, "expression": """(async () => {
                const body = document.querySelector(".modal div[name=body] textarea");
                body.value = "Recebi a receita, pode vir às 15h.";
                body.dispatchEvent(new Event("input", {bubbles: true}));
                const blob = await (await fetch(%r)).blob();
                const transfer = new DataTransfer();
                transfer.items.add(new File([blob], %r, {type: blob.type}));
                const input = document.querySelector(%r);
                input.files = transfer.files;
                input.dispatchEvent(new Event("change", {bubbles: true}));
            })()""" % (QUOTE_URL, QUOTE_NAME, selector)})
            self.shoot(browser, "p-conversation-composer",
                       ".modal div[name=attachment_ids] .o_attachment[title='%s']"
                       ":not(.o_attachment_uploading)" % QUOTE_NAME)

    def assert_reply_reached_meta(self):
        """Exactly one text and one document at the fake server, the document being the
        PDF the browser uploaded to ``/media``, under its name.

        :returns: the two accepted messages (text, document)
        """
        sent = self.fake.messages()
        self.assertEqual(sorted(m["payload"]["type"] for m in sent), ["document", "text"],
                         "one text and one document, none sent twice")
        text, document = sorted(sent, key=lambda m: m["payload"]["type"] != "text")
        self.assertEqual(text["payload"]["text"]["body"], "Recebi a receita, pode vir às 15h.")
        media = document["payload"]["document"]
        self.assertEqual(media["filename"], QUOTE_NAME)
        upload = self.fake.upload(media["id"])
        self.assertTrue(upload, "the document's media id was issued by the fake's /media")
        self.assertEqual(upload["content"], QUOTE_PDF)
        self.assertEqual(upload["filename"], QUOTE_NAME)
        self.assertEqual(upload["content_type"], "application/pdf")
        self.assertEqual(len(self.fake.uploads()), 1, "the PDF was uploaded once")
        return text, document

    def test_receptionist_answers_and_sees_it_read(self):
        event = self.make_event(self.maria)
        photo = self.customer_sends_photo()
        conversation = photo.conversation_id
        self.assertEqual(conversation.partner_id, self.maria)
        thread_url = "/odoo/action-whatsapp_coexistence.wac_conversation_action/%d" \
            % conversation.id
        self.shoot_composer(thread_url)
        event_url = "/odoo/action-calendar.action_calendar_event/%d" % event.id
        self.start_tour(event_url, "whatsapp_coexistence_conversation_reply",
                        login="wac_user_a")
        sent = self.assert_reply_reached_meta()
        replies = conversation.message_ids_wac.filtered(lambda m: m.origin == "reply")
        self.assertEqual(sorted(replies.mapped("message_type")), ["document", "text"])
        self.assertEqual(replies.create_uid, self.user_a)
        document = replies.filtered(lambda m: m.message_type == "document")
        self.assertEqual(document.attachment_ids.raw, QUOTE_PDF)
        with self.page("wac_user_a", thread_url) as browser:
            self.shoot(browser, "p-conversation-sent", ".o_wac_thread .o_data_row", height=900)
        # Meta's requests carry no browser cookie: accept them again after the browser.
        self.http_request_strict_check = False
        with self.processing():
            for message in sent:
                for status in ("sent", "delivered", "read"):
                    answer = self.fake.send_status(message["wamid"], status,
                                                   url=self.base_url() + WEBHOOK_ROUTE)
                    self.assertEqual(answer["status"], 200)
        self.assertEqual(replies.mapped("status"), ["read", "read"])
        self.start_tour(thread_url, "whatsapp_coexistence_conversation_read",
                        login="wac_user_a")
        with self.page("wac_user_a", thread_url) as browser:
            self.shoot(browser, "p-conversation-read", ".o_wac_thread .o_data_row", height=900)
