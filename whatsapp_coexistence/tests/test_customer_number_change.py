from odoo.tests import tagged

from ..const import WEBHOOK_ROUTE
from ..tools.wa_cloud import phone as wa_phone
from .common import CLINIC, SALON, WacHttpCase

OLD = "5511991234567"
NEW = "5511955554444"


@tagged("post_install", "-at_install")
class TestCustomerNumberChange(WacHttpCase):
    """Meta's ``user_changed_number``: the same person, contact and partner on a new number."""

    def setUp(self):
        super().setUp()
        self.url = self.base_url() + WEBHOOK_ROUTE

    def customer_writes(self, phone, sender, text):
        with self.processing():
            answer = self.fake.send_inbound(phone["phone_number_id"], sender, text,
                                            name="Maria", url=self.url)
        self.assertEqual(answer["status"], 200)

    def change_number(self, old=OLD, new=NEW):
        with self.processing():
            answer = self.fake.send_number_change(CLINIC["phone_number_id"], old, new,
                                                  name="Maria", url=self.url)
        self.assertEqual(answer["status"], 200)
        return answer

    def contacts(self, company, number):
        return self.env["wac.contact"].with_context(active_test=False).search([
            ("company_id", "=", company.id), ("phone_key", "=", wa_phone.canonical(number))])

    def notes(self, partner):
        return [body for body in partner.message_ids.mapped("body")
                if "changed their number" in (body or "")]

    def test_opt_out_and_history_follow_the_person(self):
        self.customer_writes(CLINIC, OLD, "Oi, quero marcar")
        self.customer_writes(CLINIC, OLD, "PARAR")
        self.customer_writes(SALON, OLD, "Oi salão")  # the same person, known to the other company
        contact = self.contacts(self.company_a, OLD)
        partner = contact.partner_id
        self.assertTrue(contact.opted_out)
        self.assertEqual(len(contact.message_ids), 2)

        answer = self.change_number()

        self.assertRecordValues(contact, [{
            "wa_id": NEW, "phone_key": wa_phone.canonical(NEW), "e164": "+5511955554444",
            "previous_wa_id": OLD, "opted_out": True, "partner_id": partner.id}])
        self.assertTrue(contact.number_changed_at)
        self.assertFalse(self.contacts(self.company_a, OLD))
        # The system message is kept in the history, with the two before it.
        self.assertEqual(len(contact.message_ids), 3)
        system = contact.message_ids.filtered(lambda m: m.wamid == answer["wamid"])
        self.assertEqual(system.message_type, "system")
        self.assertIn("changed from %s to %s" % (OLD, NEW), system.body)
        self.assertEqual(partner.wa_phone_key, wa_phone.canonical(NEW))
        self.assertEqual(len(self.notes(partner)), 1)
        event = self.env["wac.webhook.event"].search([], limit=1)
        self.assertEqual((event.state, event.summary),
                         ("done", "1 inbound message(s), 1 number change(s)"))
        # The other company heard nothing: its contact keeps the old number.
        self.assertEqual(self.contacts(self.company_b, OLD).wa_id, OLD)

        # The next message from the new number lands on the same contact and partner.
        self.customer_writes(CLINIC, NEW, "Voltei")
        self.assertEqual(self.contacts(self.company_a, NEW), contact)
        self.assertEqual(len(contact.message_ids), 4)
        self.assertEqual(contact.message_ids[0].partner_id, partner)
        # Reminders go to the new number, and the opt-out still stops them.
        number = partner._wac_number(self.company_a)
        self.assertEqual(number, "+5511955554444")
        self.assertIn("opted out", partner._wac_recipient_refusal(
            number, self.company_a, set(), opted_out=self.contacts(self.company_a, NEW).opted_out))

    def test_redelivery_changes_nothing(self):
        self.customer_writes(CLINIC, OLD, "Oi")
        contact = self.contacts(self.company_a, OLD)
        answer = self.change_number()
        self.deliver_signed(answer["payload"])
        self.assertEqual(contact.wa_id, NEW)
        self.assertEqual(len(contact.message_ids), 2)
        self.assertEqual(len(self.notes(contact.partner_id)), 1)
        self.assertEqual(self.env["wac.contact"].search_count(
            [("company_id", "=", self.company_a.id)]), 1)

    def test_new_number_seen_before_the_notice_is_folded_in(self):
        self.customer_writes(CLINIC, OLD, "PARAR")
        self.customer_writes(CLINIC, NEW, "Oi do número novo")
        contact, early = self.contacts(self.company_a, OLD), self.contacts(self.company_a, NEW)
        self.assertNotEqual(contact, early)

        self.change_number()

        self.assertEqual(self.contacts(self.company_a, NEW), contact)
        self.assertRecordValues(contact, [{"opted_out": True, "active": True}])
        self.assertEqual(len(contact.message_ids), 3)
        self.assertFalse(early.active)
        self.assertFalse(early.message_ids)
        self.assertTrue(contact.last_inbound_at)

    def test_notice_without_a_new_number_is_kept_as_text(self):
        self.customer_writes(CLINIC, OLD, "Oi")
        with self.processing():
            self.fake.send_number_change(CLINIC["phone_number_id"], OLD, "not-a-number",
                                         url=self.url)
        event = self.env["wac.webhook.event"].search([], limit=1)
        # The fake keeps digits only: an empty wa_id, nothing to act on; stored as text.
        self.assertEqual((event.state, event.summary), ("done", "1 inbound message(s)"))
        self.assertEqual(self.contacts(self.company_a, OLD).wa_id, OLD)
