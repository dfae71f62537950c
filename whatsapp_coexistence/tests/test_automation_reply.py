"""Customers' answers and the manual flow: buttons, numbered answers, wa.me links."""

import urllib.parse

from odoo.exceptions import UserError
from odoo.tests import tagged

from ..const import PARAM_KILL_SWITCH, WEBHOOK_ROUTE
from ..tools.wa_cloud.send_key import send_key, start_key
from .common import WacHttpCase
from .common_automation import FUTURE_START, WacAutomationCase, WacAutomationMixin, near_start

MARIA_WA_ID = "551191234567"  # what Meta calls Maria (see the fake's wa_id_map)


@tagged("post_install", "-at_install")
class TestReplies(WacAutomationCase):
    def setUp(self):
        super().setUp()
        self.start = near_start(25)
        self.event = self.make_event(self.maria, start=self.start)
        self.attendee = self.event.attendee_ids.filtered(lambda a: a.partner_id == self.maria)
        self.send(self.event, "reminder", self.maria)
        self.reminder = self.message_of(self.event, "reminder", self.maria)

    def test_confirm_button_accepts_the_invitation(self):
        self.inbound(self.account_a, MARIA_WA_ID, button={
            "payload": "CONFIRM:%d" % self.event.id, "text": "Confirmar"},
            context_id=self.reminder.wamid)
        self.assertEqual(self.attendee.state, "accepted")
        note = self.event.message_ids.filtered(lambda m: "confirmed the appointment" in m.body)
        self.assertTrue(note)
        self.assertIn(self.organizer_a.partner_id, note.partner_ids, "the organizer is told")

    def test_numbered_answer_to_the_reminder_declines_and_drops_reminders(self):
        reminder_job = self.env["queue.job"].search([("identity_key", "=", send_key(
            self.event.id, "reminder", self.maria.id, start_key(self.start)))])
        self.assertEqual(reminder_job.state, "pending")
        self.inbound(self.account_a, MARIA_WA_ID, text="2", context_id=self.reminder.wamid)
        self.assertEqual(self.attendee.state, "declined")
        self.assertEqual(reminder_job.state, "cancelled")
        self.assertIn("cancelled the appointment", self.chatter(self.event))

    def test_button_text_without_our_payload(self):
        self.inbound(self.account_a, MARIA_WA_ID, button={
            "payload": "Cancelar horário", "text": "Cancelar horário"},
            context_id=self.reminder.wamid)
        self.assertEqual(self.attendee.state, "declined")

    def test_bare_answer_goes_to_the_next_appointment(self):
        later = self.make_event(self.maria, start=FUTURE_START)
        self.inbound(self.account_a, MARIA_WA_ID, text="1 - Confirmar")
        self.assertEqual(self.attendee.state, "accepted")
        self.assertNotEqual(later.attendee_ids.filtered(
            lambda a: a.partner_id == self.maria).state, "accepted")

    def test_bare_answer_needs_a_recent_message_from_the_business(self):
        self.reminder.sudo().write({"message_at": "2020-01-01 00:00:00"})
        self.inbound(self.account_a, MARIA_WA_ID, text="1")
        self.assertEqual(self.attendee.state, "needsAction")

    def test_conversation_is_not_an_answer(self):
        self.inbound(self.account_a, MARIA_WA_ID, text="Oi, posso levar meu filho?",
                     context_id=self.reminder.wamid)
        self.assertEqual(self.attendee.state, "needsAction")

    def test_answer_words_are_per_company(self):
        self.account_a.reply_confirm_words = "BELEZA"
        self.inbound(self.account_a, MARIA_WA_ID, text="1", context_id=self.reminder.wamid)
        self.assertEqual(self.attendee.state, "needsAction")
        self.inbound(self.account_a, MARIA_WA_ID, text="Beleza!", context_id=self.reminder.wamid)
        self.assertEqual(self.attendee.state, "accepted")

    def test_payload_of_another_company_event_is_ignored(self):
        event_b = self.make_event(self.maria, company=self.company_b, user=self.env.user)
        self.inbound(self.account_a, MARIA_WA_ID, button={
            "payload": "CANCEL:%d" % event_b.id, "text": "Cancelar"})
        self.assertEqual(event_b.attendee_ids.filtered(
            lambda a: a.partner_id == self.maria).state, "needsAction")

    def test_echoes_never_answer(self):
        self.env["wac.message"]._wac_ingest_echoes(self.account_a, [])
        from ..tools.wa_cloud import webhook

        _waba, _wamid, payload = self.fake.state.echo_webhook(
            self.account_a.phone_number_id, MARIA_WA_ID, "1")
        value = payload["entry"][0]["changes"][0]["value"]
        self.env["wac.message"]._wac_ingest_echoes(self.account_a, webhook.echoes(value))
        self.assertEqual(self.attendee.state, "needsAction")


@tagged("post_install", "-at_install")
class TestManualFlow(WacAutomationCase):
    def decode(self, action):
        self.assertEqual(action["type"], "ir.actions.act_url")
        url = action["url"]
        number, _sep, query = url.partition("?text=")
        return number, urllib.parse.unquote(query)

    def test_wa_me_link_in_portuguese(self):
        event = self.make_event(self.maria)
        number, text = self.decode(event.action_wa_manual())
        self.assertEqual(number, "https://wa.me/5511991234567")
        self.assertEqual(text, (
            "Olá, *Maria*! 👋\n\nSeu horário com a equipe *Clínica A*:\n"
            "📅 terça-feira, 2 de fevereiro de 2027\n🕒 14:30\n"
            "📍 Sala 3, Rua das Flores, 123\n\n"
            "Responda com o número da opção:\n1 - Confirmar\n2 - Cancelar"))
        self.assertIn("WhatsApp (manual) opened for Maria Silva", self.chatter(event))

    def test_works_when_automation_is_off_and_killed(self):
        self.account_a.automation_mode = "disabled"
        self.env["ir.config_parameter"].set_param(PARAM_KILL_SWITCH, True)
        event = self.make_event(self.maria)
        number, _text = self.decode(event.action_wa_manual())
        self.assertEqual(number, "https://wa.me/5511991234567")

    def test_company_text_and_language(self):
        self.account_a.manual_message_text = "Hi {first_name}, {weekday} at {time}: {title}"
        self.company_a.partner_id.lang = "en_US"
        event = self.make_event(self.maria)
        _number, text = self.decode(event.action_wa_manual())
        self.assertEqual(text.replace("\u202f", " "), "Hi Maria, Tuesday at 2:30 PM: Limpeza")

    def test_several_customers_one_button_each(self):
        event = self.make_event(self.maria | self.joao)
        self.assertFalse(event.wa_manual_partner_id)
        with self.assertRaisesRegex(UserError, "several customers"):
            event.action_wa_manual()
        self.assertEqual(event.wa_attendee_ids.partner_id, self.maria | self.joao)
        joao = event.wa_attendee_ids.filtered(lambda a: a.partner_id == self.joao)
        self.assertEqual(joao.wa_number, "+5511987651234")
        number, _text = self.decode(joao.action_wa_manual())
        self.assertEqual(number, "https://wa.me/5511987651234")

    def test_customer_without_number(self):
        event = self.make_event(self.no_phone)
        with self.assertRaisesRegex(UserError, "no mobile number"):
            event.action_wa_manual()


@tagged("post_install", "-at_install")
class TestAutomationLoop(WacAutomationMixin, WacHttpCase):
    """The whole loop through real HTTP: send, statuses and the customer's tap come back as
    signed webhooks from the fake Graph server into Odoo's webhook endpoint."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._wac_automation_setup()

    def test_appointment_form_in_the_browser(self):
        """A WhatsApp user (a receptionist) sees on the appointment what was planned and sent,
        and the header button of the manual flow reaches the server."""
        event = self.make_event(self.maria)
        self.assertTrue(self.send(event, "confirmation", self.maria).startswith("sent"))
        self.user_a.password = "wac_user_a"
        self.start_tour("/odoo/action-calendar.action_calendar_event/%d" % event.id,
                        "whatsapp_coexistence_appointment", login="wac_user_a")
        self.assertIn("WhatsApp (manual) opened for Maria Silva by %s" % self.user_a.name,
                      self.chatter(event))

    def test_send_statuses_and_reply_through_webhooks(self):
        event = self.make_event(self.maria)
        self.assertTrue(self.send(event, "reminder", self.maria).startswith("sent"))
        message = self.message_of(event, "reminder", self.maria)
        # Delivered synchronously (the test thread waits while Odoo's HTTP thread uses the
        # test transaction), in Meta's shape and signed with the App Secret.
        url = self.base_url() + WEBHOOK_ROUTE
        with self.processing():
            for status in ("sent", "delivered"):
                answer = self.fake.send_status(message.wamid, status, url=url)
                self.assertEqual(answer["status"], 200)
        self.assertEqual(message.status, "delivered")
        self.assertEqual(message.status_ids.mapped("status"), ["sent", "delivered"])
        with self.processing():
            self.fake.send_inbound(self.account_a.phone_number_id, MARIA_WA_ID,
                                   button={"payload": "CONFIRM:%d" % event.id,
                                           "text": "Confirmar"},
                                   context_id=message.wamid, url=url)
        attendee = event.attendee_ids.filtered(lambda a: a.partner_id == self.maria)
        self.assertEqual(attendee.state, "accepted")
        self.assertIn("confirmed the appointment", self.chatter(event))
