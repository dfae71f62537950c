"""The receptionist's conversation in the browser: from the appointment to a read reply."""

import base64

from odoo import fields
from odoo.tests import tagged

from ..const import WEBHOOK_ROUTE
from . import payloads as p
from .common import CLINIC, WacHttpCase
from .common_automation import WacAutomationMixin
from .common_console import ScreenshotMixin

MARIA_WA_ID = "551191234567"
# A 1x1 PNG: what M's media download stores as the photo's attachment.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


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

    def test_receptionist_answers_and_sees_it_read(self):
        event = self.make_event(self.maria)
        photo = self.customer_sends_photo()
        conversation = photo.conversation_id
        self.assertEqual(conversation.partner_id, self.maria)
        event_url = "/odoo/action-calendar.action_calendar_event/%d" % event.id
        self.start_tour(event_url, "whatsapp_coexistence_conversation_reply",
                        login="wac_user_a")
        (sent,) = self.fake.messages()
        self.assertEqual(sent["payload"]["text"]["body"], "Recebi a receita, pode vir às 15h.")
        reply = conversation.message_ids_wac.filtered(lambda m: m.origin == "reply")
        self.assertEqual(reply.create_uid, self.user_a)
        # Meta's requests carry no browser cookie: accept them again after the tour.
        self.http_request_strict_check = False
        with self.processing():
            for status in ("delivered", "read"):
                answer = self.fake.send_status(sent["wamid"], status,
                                               url=self.base_url() + WEBHOOK_ROUTE)
                self.assertEqual(answer["status"], 200)
        self.assertEqual(reply.status, "read")
        thread_url = "/odoo/action-whatsapp_coexistence.wac_conversation_action/%d" \
            % conversation.id
        self.start_tour(thread_url, "whatsapp_coexistence_conversation_read",
                        login="wac_user_a")
        with self.page("wac_user_a", thread_url) as browser:
            self.shoot(browser, "p-conversation-thread", ".o_wac_thread .o_data_row", height=900)
            self.click(browser, ".o_form_view button[name=action_reply]")
            self.shoot(browser, "p-conversation-composer", ".modal div[name=body] textarea")
