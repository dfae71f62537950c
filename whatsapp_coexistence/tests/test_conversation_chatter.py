"""A conversation's chatter never e-mails the customer in place of a WhatsApp answer.

The posts go through Odoo's HTTP route, as the chatter sends them, by a receptionist of one
company.
"""

import json

from odoo.tests import tagged

from .common import WacHttpCase
from .common_automation import WacAutomationMixin

ANSWER = "Pode vir amanhã às 15h."


@tagged("post_install", "-at_install")
class TestConversationChatter(WacAutomationMixin, WacHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._wac_automation_setup()
        cls.user_a.write({"password": "wac_user_a", "notification_type": "inbox"})
        cls.maria.email = "maria.silva@example.com"
        contact = cls.env["wac.contact"].create({
            "company_id": cls.company_a.id, "wa_id": "551191234567",
            "partner_id": cls.maria.id})
        cls.conversation = cls.env["wac.conversation"].create({
            "company_id": cls.company_a.id, "contact_id": contact.id})
        # The trap at its worst: the customer follows the thread (added by hand, or by an
        # e-mail she once sent), so a discussion message would reach her mailbox.
        cls.conversation.message_subscribe(partner_ids=cls.maria.ids)

    def post_from_chatter(self, subtype_xmlid, partner_ids=()):
        """POST what the chatter's composer posts; return the JSON-RPC answer."""
        self.authenticate("wac_user_a", "wac_user_a")
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "thread_model": "wac.conversation", "thread_id": self.conversation.id,
            "post_data": {"body": ANSWER, "message_type": "comment",
                          "subtype_xmlid": subtype_xmlid, "partner_ids": list(partner_ids)},
        }})
        response = self.url_open("/mail/message/post", data=body,
                                 headers={"Content-Type": "application/json"})
        self.assertEqual(response.status_code, 200)
        return response.json()

    def emails_to_maria(self):
        return self.env["mail.notification"].search([
            ("res_partner_id", "=", self.maria.id), ("notification_type", "=", "email")])

    def posted(self):
        return self.conversation.message_ids.filtered(lambda m: ANSWER in (m.body or ""))

    def test_send_message_is_refused_and_says_where_to_answer(self):
        answer = self.post_from_chatter("mail.mt_comment", partner_ids=self.maria.ids)
        self.assertIn("error", answer, "a discussion message on a conversation is refused")
        self.assertIn("Reply on WhatsApp", answer["error"]["data"]["message"])
        self.assertFalse(self.emails_to_maria(), "the customer got no e-mail")
        self.assertFalse(self.posted(), "nothing half-posted in the chatter")
        self.assertFalse(self.fake.messages(), "and nothing went to WhatsApp behind her back")

    def test_log_note_stays_inside_the_team(self):
        answer = self.post_from_chatter("mail.mt_note")
        self.assertNotIn("error", answer)
        note = self.posted()
        self.assertEqual(len(note), 1)
        self.assertTrue(note.subtype_id.internal)
        self.assertEqual(note.author_id, self.user_a.partner_id)
        self.assertFalse(self.emails_to_maria())

    def test_note_mentioning_the_customer_is_refused(self):
        """A mention in a log note e-mails the partner mentioned: not the customer's."""
        answer = self.post_from_chatter("mail.mt_note", partner_ids=self.maria.ids)
        self.assertIn("error", answer)
        self.assertIn("Maria Silva would receive it by e-mail",
                      answer["error"]["data"]["message"])
        self.assertFalse(self.emails_to_maria())
        self.assertFalse(self.posted())

    def test_note_mentioning_a_colleague_reaches_them(self):
        answer = self.post_from_chatter("mail.mt_note", partner_ids=self.manager_a.partner_id.ids)
        self.assertNotIn("error", answer)
        self.assertIn(self.manager_a.partner_id, self.posted().partner_ids)
