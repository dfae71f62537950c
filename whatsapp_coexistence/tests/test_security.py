from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import WacTransactionCase


@tagged("post_install", "-at_install")
class TestTenantIsolation(WacTransactionCase):
    """A WhatsApp manager of company A can neither see nor change anything of company B."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.contact_b = cls.env["wac.contact"]._wac_resolve(
            cls.account_b, [("5521991112222", None, "Cliente B")])["5521991112222"]
        cls.message_b = cls.env["wac.message"].create({
            "company_id": cls.company_b.id, "account_id": cls.account_b.id,
            "contact_id": cls.contact_b.id, "wamid": "wamid.B1", "direction": "in",
            "source": "customer", "body": "Oi do salão",
        })

    def test_manager_sees_only_own_account(self):
        Account = self.env["wac.account"].with_user(self.manager_a)
        self.assertEqual(Account.search([]), self.account_a.with_user(self.manager_a))
        with self.assertRaises(AccessError):
            self.account_b.with_user(self.manager_a).read(["waba_id"])
        self.assertFalse(self.company_b.with_user(self.manager_a).wa_account_id)

    def test_manager_cannot_change_other_company(self):
        with self.assertRaises(AccessError):
            self.account_b.with_user(self.manager_a).write({"automation_mode": "enabled"})
        with self.assertRaises(AccessError):
            self.account_b.with_user(self.manager_a).access_token = "EAAGstolen0000000000000000001"
        company_c = self.env["res.company"].create({"name": "Company C"})
        with self.assertRaises(AccessError):
            self.env["wac.account"].with_user(self.manager_a).create(
                {"company_id": company_c.id})
        with self.assertRaises(AccessError):
            self.account_b.with_user(self.manager_a).action_test_connection()
        self.assertEqual(self.account_b.automation_mode, "disabled")

    def test_manager_cannot_read_other_company_data(self):
        for model in ("wac.contact", "wac.message", "wac.message.status", "wac.template",
                      "wac.webhook.event"):
            records = self.env[model].with_user(self.manager_a).search([])
            self.assertFalse(records.filtered(lambda r: r.company_id == self.company_b),
                             "%s leaks company B" % model)
        with self.assertRaises(AccessError):
            self.message_b.with_user(self.manager_a).read(["body"])
        with self.assertRaises(AccessError):
            self.contact_b.with_user(self.manager_a).write({"opted_out": True})

    def test_user_reads_but_cannot_configure(self):
        account = self.account_a.with_user(self.user_a)
        self.assertEqual(account.waba_id, self.account_a.waba_id)
        with self.assertRaises(AccessError):
            account.write({"automation_mode": "enabled"})

    def test_ciphertext_and_deliveries_are_for_administrators(self):
        for user in (self.manager_a, self.user_a):
            with self.assertRaises(AccessError):
                self.account_a.with_user(user).read(["access_token_enc"])
            with self.assertRaises(AccessError):
                self.env["wac.webhook.delivery"].with_user(user).search([])
            # Refused webhooks failed before routing: they mix every tenant's traffic.
            with self.assertRaises(AccessError):
                self.env["wac.webhook.rejection"].with_user(user).search([])
        data = self.account_a.with_user(self.manager_a).read()[0]
        self.assertNotIn("access_token_enc", data)
        self.assertFalse(data["access_token"])
        self.manager_a.groups_id += self.env.ref("base.group_allow_export")
        exported = self.account_a.with_user(self.manager_a).export_data(
            ["waba_id", "access_token", "token_info"])["datas"]
        self.assertEqual(exported[0][0], self.account_a.waba_id)
        self.assertNotIn("EAAG", repr(exported))
        with self.assertRaises(AccessError):
            self.account_a.with_user(self.manager_a).export_data(["access_token_enc"])

    def test_settings_never_return_the_app_secret(self):
        settings = self.env["res.config.settings"].create({"wac_app_secret": "new-app-secret-42"})
        settings.execute()
        stored = self.env["ir.config_parameter"].sudo().get_param(
            "whatsapp_coexistence.app_secret_enc")
        self.assertNotIn("new-app-secret-42", stored)
        self.assertEqual(self.env["wac.vault"]._app_secret(), "new-app-secret-42")
        fresh = self.env["res.config.settings"].create({})
        self.assertFalse(fresh.wac_app_secret)
        self.assertIn("encrypted", fresh.wac_app_secret_info)
