import importlib.util
import os

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from ..const import WEBHOOK_ROUTE
from . import payloads as P
from .common import CLINIC, SALON, WacHttpCase

NEW_ID = "106540352249999"
NEW_DISPLAY = "+55 11 91111-2222"
MARIA = "5511991234567"


@tagged("post_install", "-at_install")
class TestBusinessNumberChange(WacHttpCase):
    """The clinic moves to a second number of its WABA: by *Change number* or a new signup."""

    def setUp(self):
        super().setUp()
        self.url = self.base_url() + WEBHOOK_ROUTE
        self.fake.add_phone(CLINIC["waba_id"], NEW_ID, NEW_DISPLAY, is_on_biz_app=True,
                            verified_name="Clínica Sorriso")

    def customer_writes(self, phone_number_id, text):
        with self.processing():
            answer = self.fake.send_inbound(phone_number_id, MARIA, text, name="Maria",
                                            url=self.url)
        self.assertEqual(answer["status"], 200)
        return self.env["wac.webhook.event"].search([], limit=1)

    def old_number_life(self):
        """A message and a history chunk on the old number, a contact in the app's book."""
        self.customer_writes(CLINIC["phone_number_id"], "Oi, número antigo")
        self.deliver_signed(P.history_chunk())
        contact = self.env["wac.contact"].search([("company_id", "=", self.company_a.id),
                                                  ("wa_id", "=", MARIA)])
        contact.sudo().in_app_address_book = True
        self.assertEqual(self.account_a.history_state, "importing")
        return self.env["wac.message"].search([("company_id", "=", self.company_a.id)])

    def open_wizard(self, user=None):
        action = self.account_a.with_user(user or self.manager_a).action_wac_change_number()
        return self.env["wac.change.number"].with_user(user or self.manager_a).browse(
            action["res_id"])

    def assert_switched(self, old_messages, source):
        account = self.account_a
        self.assertRecordValues(account, [{
            "phone_number_id": NEW_ID, "display_phone_number": NEW_DISPLAY,
            "history_state": "requested"}])
        # The old number's messages are still there, readable, with the number they were on.
        readable = self.env["wac.message"].with_user(self.manager_a).search(
            [("id", "in", old_messages.ids)])
        self.assertEqual(readable, old_messages)
        self.assertEqual(set(old_messages.mapped("phone_number_id")), {CLINIC["phone_number_id"]})
        change = account.number_change_ids
        self.assertRecordValues(change, [{
            "source": source, "user_id": self.manager_a.id,
            "old_phone_number_id": CLINIC["phone_number_id"],
            "old_display_phone_number": CLINIC["display_phone_number"],
            "new_phone_number_id": NEW_ID, "new_display_phone_number": NEW_DISPLAY,
            "old_history_messages": len(old_messages.filtered(lambda m: m.source == "history")),
            "sync_error": False}])
        # History and contacts sync start over, on the new number, contacts first.
        self.assertFalse(account.history_chunk_ids)
        syncs = self.assert_graph_called("POST", "/smb_app_data", count=2)
        self.assertEqual([(s["path"].split("/")[-2], s["json"]["sync_type"]) for s in syncs],
                         [(NEW_ID, "smb_app_state_sync"), (NEW_ID, "history")])
        self.assertFalse(self.env["wac.contact"].search([
            ("company_id", "=", self.company_a.id), ("in_app_address_book", "=", True)]))
        audit = self.env["wac.audit.log"].search([("action", "=", "change_number")])
        self.assertRecordValues(audit, [{
            "company_id": self.company_a.id, "user_id": self.manager_a.id,
            "res_id": account.id,
            "old_value": "%s (%s)" % (CLINIC["display_phone_number"], CLINIC["phone_number_id"]),
            "new_value": "%s (%s)" % (NEW_DISPLAY, NEW_ID)}])
        self.assertTrue(any("WhatsApp number changed by" in (body or "")
                            for body in account.message_ids.mapped("body")))
        return change

    def assert_webhooks_routed(self, old_messages):
        # A webhook still addressed to the old number: kept, unroutable, and says why.
        event = self.customer_writes(CLINIC["phone_number_id"], "Ainda no antigo")
        self.assertEqual((event.state, event.company_id.id), ("unroutable", False))
        self.assertIn("previous number %s" % CLINIC["display_phone_number"], event.summary)
        self.assertIn(self.company_a.name, event.summary)
        self.assertEqual(self.env["wac.message"].search_count(
            [("company_id", "=", self.company_a.id)]), len(old_messages))
        # The new number's webhooks reach the company, on the same contact.
        event = self.customer_writes(NEW_ID, "Oi, número novo")
        self.assertEqual((event.state, event.company_id), ("done", self.company_a))
        new = self.env["wac.message"].search([("company_id", "=", self.company_a.id)], limit=1)
        self.assertEqual((new.body, new.phone_number_id), ("Oi, número novo", NEW_ID))
        self.assertIn(new.contact_id, old_messages.contact_id)

    def test_change_number_wizard(self):
        old_messages = self.old_number_life()
        wizard = self.open_wizard()
        self.assertEqual(
            [(o.phone_number_id, o.current) for o in wizard.option_ids],
            [(CLINIC["phone_number_id"], True), (NEW_ID, False)])
        wizard.option_id = wizard.option_ids.filtered(lambda o: not o.current)
        self.fake.clear_requests()
        wizard.action_confirm()
        self.assert_graph_called("GET", "/%s/phone_numbers" % CLINIC["waba_id"])
        self.assert_graph_called("GET", "/%s/subscribed_apps" % CLINIC["waba_id"])
        self.assertEqual(self.graph_requests("/" + NEW_ID, "GET")[0]["path"].split("/")[-1],
                         NEW_ID)
        change = self.assert_switched(old_messages, "wizard")
        self.assertTrue(change.contacts_request_id and change.history_request_id)
        self.assert_webhooks_routed(old_messages)

    def test_new_signup_replaces_the_number(self):
        old_messages = self.old_number_life()
        onboarding = self.env["wac.onboarding"].with_user(self.manager_a)._wac_start(
            self.account_a)
        code = self.fake.issue_code(waba_id=CLINIC["waba_id"], phone_number_id=NEW_ID)["code"]
        self.fake.clear_requests()
        ok, message = onboarding.with_user(self.manager_a)._wac_finish(code, {
            "event": "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
            "data": {"waba_id": CLINIC["waba_id"], "phone_number_id": NEW_ID}})
        self.assertTrue(ok, message)
        self.assert_switched(old_messages, "signup")
        # The signup requested the syncs itself, as at a first onboarding.
        self.assertTrue(onboarding.contacts_request_id and onboarding.history_request_id)
        self.assert_webhooks_routed(old_messages)

    def test_typed_id_is_checked_with_meta_first(self):
        wizard = self.open_wizard()
        wizard.phone_number_id = " %s " % NEW_ID
        wizard.action_confirm()
        self.assertEqual(self.account_a.phone_number_id, NEW_ID)
        for wrong, says in ((NEW_ID, "already this company's number"),
                            (SALON["phone_number_id"], "is not a number of"),
                            ("", "Choose the new number")):
            with self.subTest(wrong=wrong), self.assertRaisesRegex(UserError, says):
                self.account_a.with_user(self.manager_a)._wac_change_number(wrong)
        self.assertEqual(len(self.account_a.number_change_ids), 1)

    def test_refusals_change_nothing(self):
        with self.assertRaises(AccessError):
            self.account_a.with_user(self.manager_b).action_wac_change_number()
        with self.assertRaises(AccessError):
            self.account_a.with_user(self.user_a)._wac_change_number(NEW_ID)
        self.fake.set_token(CLINIC["token"], revoked=True)
        with self.assertRaisesRegex(UserError, "rejected the access token"):
            self.account_a.with_user(self.manager_a)._wac_change_number(NEW_ID)
        self.assertEqual(self.account_a.phone_number_id, CLINIC["phone_number_id"])
        self.assertFalse(self.account_a.number_change_ids)
        self.assertFalse(self.env["wac.audit.log"].search([("action", "=", "change_number")]))

    def test_sync_refused_by_meta_is_recorded_and_the_change_stands(self):
        self.fake.add_fault(match={"method": "POST", "path": "/smb_app_data"}, code=100,
                            message="(#100) Synchronization of history was already requested")
        change = self.account_a.with_user(self.manager_a)._wac_change_number(NEW_ID)
        self.assertEqual(self.account_a.phone_number_id, NEW_ID)
        self.assertIn("already requested", change.sync_error)
        self.assertFalse(change.contacts_request_id)
        self.assert_graph_called("POST", "/smb_app_data", count=1)
        self.assertTrue(any("Meta refused the smb_app_state_sync sync" in (body or "")
                            for body in self.account_a.message_ids.mapped("body")))

    def test_number_of_a_business_app_less_number_requests_no_sync(self):
        self.fake.set_phone(NEW_ID, is_on_biz_app=False)
        change = self.account_a.with_user(self.manager_a)._wac_change_number(NEW_ID)
        self.assertFalse(change.history_request_id)
        self.assert_graph_called("POST", "/smb_app_data", count=0)

    def test_migration_fills_the_number_of_existing_messages(self):
        message = self.env["wac.message"].create({
            "company_id": self.company_a.id, "account_id": self.account_a.id,
            "direction": "in", "source": "customer", "status": "received"})
        self.assertEqual(message.phone_number_id, CLINIC["phone_number_id"])
        self.env.cr.execute("UPDATE wac_message SET phone_number_id = NULL WHERE id = %s",
                            [message.id])
        path = os.path.join(os.path.dirname(__file__), "..", "migrations", "18.0.1.3.0",
                            "post-migrate.py")
        spec = importlib.util.spec_from_file_location("wac_migrate_18_0_1_3_0", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.migrate(self.env.cr, "18.0.1.2.0")
        message.invalidate_recordset()
        self.assertEqual(message.phone_number_id, CLINIC["phone_number_id"])
