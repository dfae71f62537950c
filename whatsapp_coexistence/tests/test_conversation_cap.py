"""A person's reply and the account's limits (``models/wac_conversation_cap.py``): Meta's
pacing applies to every reply; the daily cap per person applies only to what the business
starts, automated messages and templates outside the customer's 24 h window.

Webhooks signed through Odoo's HTTP server, replies and automated sends over HTTP to the fake
Graph server."""

from datetime import timedelta

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import Form, tagged

from . import payloads as p
from .common import CLINIC, WacHttpCase
from .common_automation import WacAutomationMixin

MARIA_WA_ID = "551191234567"  # the fake's wa_id for the automation's MARIA


@tagged("post_install", "-at_install")
class TestConversationCap(WacAutomationMixin, WacHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._wac_automation_setup()
        cls.receptionist = cls.user_a

    def setUp(self):
        super().setUp()
        self.event = self.make_event(self.maria)

    def customer_writes(self, when=None):
        """Maria writes (``when``: her message's time), through a signed webhook."""
        timestamp = str(int((when or fields.Datetime.now()).timestamp()))
        self.deliver_signed(p.inbound_text(
            phone_number_id=CLINIC["phone_number_id"], waba_id=CLINIC["waba_id"],
            wamid="wamid.CAP%s" % timestamp, from_=MARIA_WA_ID, body="Oi",
            timestamp=timestamp, profile_name="Maria Silva"))
        # By partner: whichever form of Maria's number her contact holds.
        return self.env["wac.conversation"].search([
            ("company_id", "=", self.company_a.id), ("partner_id", "=", self.maria.id)])

    def composer(self, conversation):
        return Form(self.env["wac.conversation.reply"].with_user(self.receptionist)
                    .with_context(default_conversation_id=conversation.id))

    def reply_text(self, conversation, text, files=()):
        form = self.composer(conversation)
        form.body = text
        for attachment in files:
            form.attachment_ids.add(attachment)
        return form.save().action_send()

    def reply_template(self, conversation):
        form = self.composer(conversation)
        self.assertEqual(form.mode, "template")
        form.template_id = self.tpl_confirmation
        for index in range(len(form.param_ids)):
            with form.param_ids.edit(index) as line:
                line.value = line.value or "amanhã"
        return form.save().action_send()

    # ------------------------------------------------------------
    # The daily cap per person
    # ------------------------------------------------------------

    def test_answers_inside_the_window_are_neither_capped_nor_counted(self):
        """A morning's conversation does not use up the afternoon's reminder."""
        self.account_a.recipient_daily_cap = 2
        conversation = self.customer_writes()
        for text in ("Bom dia!", "Temos horário às 15h.", "Até logo."):
            self.reply_text(conversation, text)
        self.assertEqual(len(self.fake.messages()), 3, "the cap does not stop a person")
        self.assertFalse(conversation.message_ids_wac.filtered("reply_outside_window"))
        result = self.send(self.event, "confirmation", self.maria)
        self.assertTrue(result.startswith("sent"), result)
        self.assertEqual(len(self.fake.messages()), 4)

    def test_a_template_outside_the_window_obeys_and_counts_toward_the_cap(self):
        self.account_a.recipient_daily_cap = 2
        conversation = self.customer_writes(when=fields.Datetime.now() - timedelta(hours=30))
        self.assertFalse(conversation.window_open)
        self.send(self.event, "confirmation", self.maria)  # automation: 1 of 2
        self.reply_template(conversation)  # the person's template: 2 of 2
        reply = conversation.message_ids_wac.filtered(lambda m: m.origin == "reply")
        self.assertRecordValues(reply, [{"reply_outside_window": True, "status": "accepted"}])
        with self.assertRaisesRegex(UserError, "Daily cap reached: 2 messages started by the "
                                    "business.*Outside the 24 h window a template starts"):
            self.reply_template(conversation)
        self.assertEqual(len(self.fake.messages()), 2, "the third one is not sent")
        result = self.send(self.event, "reminder", self.maria)
        self.assertIn("Daily cap reached", result, "the person's template counted")
        self.assertEqual(len(self.fake.messages()), 2)

    def test_a_template_inside_the_window_is_an_answer(self):
        self.account_a.recipient_daily_cap = 1
        self.send(self.event, "confirmation", self.maria)  # the cap is reached
        conversation = self.customer_writes()
        form = self.composer(conversation)
        form.mode = "template"
        form.template_id = self.tpl_confirmation
        for index in range(len(form.param_ids)):
            with form.param_ids.edit(index) as line:
                line.value = line.value or "amanhã"
        form.save().action_send()
        self.assertEqual(len(self.fake.messages()), 2)
        reply = conversation.message_ids_wac.filtered(lambda m: m.origin == "reply")
        self.assertRecordValues(reply, [{"reply_outside_window": False}])

    # ------------------------------------------------------------
    # Meta's pacing: company and person, shared with the automation
    # ------------------------------------------------------------

    def test_a_reply_waits_for_the_pair_spacing_after_an_automated_message(self):
        """Meta's pair rate limit (131056) counts every message to one person: a reply right
        after an automated message is refused with the wait, and nothing goes."""
        self.account_a.recipient_spacing_s = 60
        conversation = self.customer_writes()
        self.send(self.event, "confirmation", self.maria)
        with self.assertRaisesRegex(UserError, r"paces messages.* in (59|60) s\..*nothing was "
                                    "sent"):
            self.reply_text(conversation, "Recebeu a confirmação?")
        self.assertEqual(len(self.fake.messages()), 1)
        self.assertFalse(conversation.message_ids_wac.filtered(lambda m: m.origin == "reply"))

    def test_a_text_and_its_file_go_one_spacing_apart(self):
        """Within the reply's wait (REPLY_MAX_WAIT) the second message waits for its slot
        instead of being refused."""
        self.account_a.recipient_spacing_s = 2
        conversation = self.customer_writes()
        pdf = self.env["ir.attachment"].with_user(self.receptionist).create({
            "name": "preparo.pdf", "raw": b"%PDF-1.4\n%%EOF\n", "mimetype": "application/pdf"})
        self.reply_text(conversation, "Segue o preparo do exame", files=[pdf])
        text, document = self.fake.messages()
        self.assertEqual((text["payload"]["type"], document["payload"]["type"]),
                         ("text", "document"))
