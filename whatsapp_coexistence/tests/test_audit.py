from odoo.tests import tagged

from ..const import PARAM_APP_SECRET
from .common import WacTransactionCase


@tagged("post_install", "-at_install")
class TestAudit(WacTransactionCase):
    """Every audited change leaves who, when and old → new, never a secret's value, and each
    company's managers read their own entries only."""

    def logs(self, **where):
        domain = [(key, "=", value) for key, value in where.items()]
        return self.env["wac.audit.log"].search(domain, order="id")

    def settings(self, **vals):
        self.env["res.config.settings"].create(vals).execute()

    def test_installation_settings_and_secret(self):
        self.settings(wac_app_id="999000111", wac_kill_switch=True,
                      wac_app_secret="a-brand-new-app-secret")
        app_id = self.logs(what="Meta App ID")
        self.assertEqual((app_id.new_value, app_id.company_id.id), ("999000111", False))
        self.assertEqual(self.logs(what="Stop all automated WhatsApp messages").new_value,
                         "True")
        secret = self.logs(what="App Secret")
        self.assertEqual((secret.old_value, secret.new_value), ("set", "replaced"))
        stored = " ".join(self.env["wac.audit.log"].search([]).mapped(
            lambda log: "%s %s %s" % (log.old_value, log.new_value, log.note)))
        self.assertNotIn("a-brand-new-app-secret", stored)
        self.assertTrue(self.env["ir.config_parameter"].sudo().get_param(PARAM_APP_SECRET))
        # Unchanged settings are not logged again.
        self.settings(wac_app_id="999000111")
        self.assertEqual(len(self.logs(what="Meta App ID")), 1)

    def test_limits_quiet_hours_allowlist_keywords_and_mode(self):
        account = self.account_a.with_user(self.manager_a)
        account.write({"rate_limit_mps": 10, "quiet_hours_start": 22,
                       "pilot_allowlist": "+55 11 91234-5678",
                       "opt_out_keywords": "STOP, SAIR", "automation_mode": "dry_run"})
        mine = self.logs(user_id=self.manager_a.id)
        changes = {log.what: (log.old_value, log.new_value) for log in mine}
        self.assertEqual(len(mine), 5)
        self.assertEqual(changes["Messages per second"], ("20.0", "10.0"))
        self.assertEqual(changes["Quiet hours from"], ("21.0", "22.0"))
        # The allowlist is logged as stored: normalised to E.164.
        self.assertEqual(changes["Pilot Allowlist"], (False, "+5511912345678"))
        self.assertEqual(changes["Opt Out Keywords"][1], "STOP, SAIR")
        self.assertEqual(changes["Automation Mode"], ("Disabled", "Dry run"))
        self.assertEqual(mine.company_id, self.company_a)

    def test_token_is_logged_as_set_or_replaced(self):
        self.account_a.with_user(self.manager_a).access_token = "EAAGnewtoken00000000000000000099"
        log = self.logs(what="Access token", user_id=self.manager_a.id)
        self.assertEqual((log.old_value, log.new_value), ("set", "replaced"))
        self.assertNotIn("EAAGnewtoken", "%s %s" % (log.old_value, log.new_value))

    def test_mappings(self):
        template = self.env["wac.template"].create({
            "company_id": self.company_a.id, "account_id": self.account_a.id,
            "name": "appointment_reminder", "language": "pt_BR", "status": "APPROVED",
            "category": "UTILITY", "components": '[{"type": "BODY", "text": "Olá {{1}}"}]'})
        Mapping = self.env["wac.template.mapping"].with_user(self.manager_a)
        mapping = Mapping.create({"company_id": self.company_a.id,
                                  "message_type": "reminder", "template_id": template.id})
        mapping.param_ids.write({"source": "fixed_text", "fixed_value": "Maria"})
        mapping.write({"message_type": "confirmation"})
        mapping.unlink()
        self.assertEqual(self.logs(res_model="wac.template.mapping").mapped("action"),
                         ["create", "change", "delete"])
        self.assertEqual(self.logs(what="Fixed Value").new_value, "Maria")
        self.assertEqual(self.logs(what="Message Type").mapped(
            lambda log: (log.old_value, log.new_value)), [("Reminder", "Confirmation")])

    def test_manual_opt_out(self):
        contact = self.env["wac.contact"]._wac_resolve(
            self.account_a, [("5511991112222", None, "Cliente A")])["5511991112222"]
        contact.with_user(self.manager_a).write({"opted_out": True})
        log = self.logs(res_model="wac.contact")
        self.assertEqual((log.user_id, log.old_value, log.new_value, log.company_id),
                         (self.manager_a, "No", "Yes", self.company_a))

    def test_managers_read_their_company_only_admins_the_installation(self):
        self.settings(wac_app_id="42424242")
        self.account_a.write({"rate_limit_mps": 5})
        self.account_b.write({"rate_limit_mps": 6})
        Log = self.env["wac.audit.log"]
        seen_by_a = Log.with_user(self.manager_a).search([])
        self.assertEqual(seen_by_a.mapped("company_id"), self.company_a)
        self.assertFalse(Log.with_user(self.user_a).has_access("read"))
        admin = self.env.ref("base.user_admin")
        admin.write({"company_ids": [(4, self.company_a.id), (4, self.company_b.id)]})
        seen_by_admin = Log.with_user(admin).with_context(
            allowed_company_ids=admin.company_ids.ids).search([])
        self.assertIn("42424242", seen_by_admin.mapped("new_value"))
        self.assertEqual(len(seen_by_admin), len(Log.search([])))
