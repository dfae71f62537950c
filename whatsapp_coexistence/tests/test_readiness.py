from datetime import timedelta
from html.parser import HTMLParser

from lxml import html

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from ..const import PARAM_KILL_SWITCH
from .common import WacTransactionCase
from .common_console import ConsoleMixin


@tagged("post_install", "-at_install")
class TestReadiness(ConsoleMixin, WacTransactionCase):
    """The seed's ten items, one test each, the rendering, and the go-live gate."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A tested coexistence number, as Test connection leaves it.
        cls.account_a.write({"last_check_ok": True, "is_on_biz_app": True})

    def items(self, account=None):
        return {item.key: item for item in (account or self.account_a)._wac_readiness()}

    # ------------------------------------------------------------
    # One test per item
    # ------------------------------------------------------------

    def test_01_credentials(self):
        self.assertTrue(self.items()["credentials"].ok)
        self.account_a.sudo().write({"access_token_enc": False, "token_set_on": False})
        self.assertIn("No access token stored.", self.items()["credentials"].missing)

    def test_02_templates_every_type_in_every_language(self):
        item = self.items()["templates"]
        self.assertFalse(item.ok)
        self.assertEqual(len(item.missing), 4)
        self.make_ready(self.account_a)
        self.assertTrue(self.items()["templates"].ok)
        # A second language used by the company needs its four types too.
        english = self.env["wac.template"].create({
            "company_id": self.company_a.id, "account_id": self.account_a.id,
            "name": "appointment_confirmation", "language": "en_US", "status": "APPROVED",
            "category": "UTILITY", "components": '[{"type": "BODY", "text": "Hi"}]'})
        self.env["wac.template.mapping"].create({
            "company_id": self.company_a.id, "message_type": "confirmation",
            "template_id": english.id})
        missing = self.items()["templates"].missing
        self.assertEqual(len(missing), 3)
        self.assertTrue(all("en_US" in line for line in missing))

    def test_03_webhook_signed_in_the_last_7_days(self):
        self.assertFalse(self.items()["webhook"].ok)
        self.signed_webhook(self.account_a, age=timedelta(days=8))
        self.assertFalse(self.items()["webhook"].ok)
        # Company B's webhooks do not count for A.
        self.signed_webhook(self.account_b)
        self.assertFalse(self.items()["webhook"].ok)
        self.signed_webhook(self.account_a, age=timedelta(days=1))
        self.assertTrue(self.items()["webhook"].ok)

    def test_04_coexistence_sync(self):
        item = self.items()["coexistence"]
        self.assertFalse(item.ok)
        self.assertFalse(item.blocking)
        self.account_a.write({"history_state": "importing"})
        self.assertTrue(self.items()["coexistence"].ok)
        # A number Meta reports as not shared with the Business App has nothing to sync.
        self.account_b.write({"last_check_ok": True, "is_on_biz_app": False})
        self.assertTrue(self.items(self.account_b)["coexistence"].ok)
        self.account_b.write({"is_on_biz_app": True})
        self.assertFalse(self.items(self.account_b)["coexistence"].ok)

    def test_05_limits(self):
        self.assertTrue(self.items()["limits"].ok)
        self.account_a.write({"rate_limit_mps": 80})
        self.assertIn("20", self.items()["limits"].missing[0])

    def test_06_audit_trail_active(self):
        self.assertTrue(self.items()["audit"].ok)
        self.env.ref("whatsapp_coexistence.ir_cron_wac_late_statuses").active = False
        self.assertFalse(self.items()["audit"].ok)

    def test_07_signup_or_verified_token(self):
        self.assertTrue(self.items()["signup"].ok)
        self.account_a.write({"last_check_ok": False})
        self.assertFalse(self.items()["signup"].ok)
        self.env["wac.onboarding"].create({
            "company_id": self.company_a.id, "account_id": self.account_a.id,
            "user_id": self.env.uid, "state": "connected"})
        self.assertTrue(self.items()["signup"].ok)

    def test_08_feature_flag(self):
        self.assertTrue(self.items()["feature_flag"].ok)
        self.env["ir.config_parameter"].sudo().set_param(PARAM_KILL_SWITCH, "True")
        self.assertIn("The global kill switch is on (Settings).",
                      self.items()["feature_flag"].missing)
        self.env["ir.config_parameter"].sudo().set_param(PARAM_KILL_SWITCH, False)
        self.account_a.write({"automation_paused": True, "automation_pause_reason": "190"})
        self.assertFalse(self.items()["feature_flag"].ok)

    def test_08_feature_flag_reads_the_kill_switch_as_the_sender_does(self):
        """One reading of the kill switch: "1" or "true" stop every send, so the readiness
        item says so too (it used to see only "True")."""
        for value in ("1", "true"):
            self.env["ir.config_parameter"].sudo().set_param(PARAM_KILL_SWITCH, value)
            self.assertTrue(self.env["wac.send"]._wac_kill_switch())
            self.assertIn("The global kill switch is on (Settings).",
                          self.items()["feature_flag"].missing, value)

    def test_09_10_attestations_record_who_and_when(self):
        items = self.items()
        self.assertFalse(items["support"].ok)
        self.assertFalse(items["compliance"].ok)
        self.assertTrue(items["compliance"].links)
        account = self.account_a.with_user(self.manager_a)
        account.action_wac_attest_support()
        account.action_wac_attest_compliance()
        items = self.items()
        self.assertTrue(items["support"].ok and items["compliance"].ok)
        self.assertEqual(items["support"].attestation.user_id, self.manager_a)
        self.assertIn("Attested by %s" % self.manager_a.name, self.account_a.readiness_html)
        # A manager of B cannot attest for A.
        with self.assertRaises(AccessError):
            self.account_a.with_user(self.manager_b).action_wac_attest_support()
        account.action_wac_withdraw_support()
        self.assertFalse(self.items()["support"].ok)
        logs = self.env["wac.audit.log"].search([("action", "=", "attest")], order="id")
        self.assertEqual(logs.mapped(lambda log: (log.what, log.new_value, log.user_id)), [
            ("Support process", "attested", self.manager_a),
            ("Meta and WhatsApp policies", "attested", self.manager_a),
            ("Support process", "withdrawn", self.manager_a)])

    def test_rendered_icons_are_empty_and_closed(self):
        """Each icon is an empty, closed element. A browser ignores "/>" on an element that is
        not void: the old <i class="fa ..."/> left every icon open, so each line nested in the
        icon above it and repeated its icons in FontAwesome's fallback serif font (#12)."""
        self.make_ready(self.account_a)
        parser = _SelfClosingTags()
        parser.feed(str(self.account_a.readiness_html))
        self.assertEqual(parser.found, [], "non-void elements written self-closing")
        tree = html.fromstring(self.account_a.readiness_html)
        lines = tree.xpath("//li")
        self.assertEqual(len(lines), 10)
        for icon in tree.xpath("//i"):
            self.assertEqual((len(icon), icon.text_content()), (0, ""))
        self.assertTrue(all(len(line.xpath(".//i")) == 1 for line in lines))
        self.assertEqual(self.account_a.readiness_summary, "8/10")

    # ------------------------------------------------------------
    # The go-live gate
    # ------------------------------------------------------------

    def test_gate_refuses_naming_the_open_items_and_leaves_dry_run_open(self):
        account = self.account_a.with_user(self.manager_a)
        account.write({"automation_mode": "dry_run"})
        self.make_ready(self.account_a)
        with self.assertRaises(UserError) as refusal:
            account.write({"automation_mode": "enabled"})
        message = str(refusal.exception)
        self.assertIn("Support process", message)
        self.assertIn("policies", message)
        self.assertNotIn("Approved templates", message)
        account.action_wac_attest_support()
        account.action_wac_attest_compliance()
        account.write({"automation_mode": "enabled"})
        self.assertEqual(self.account_a.automation_mode, "enabled")

    def test_override_by_an_administrator_is_recorded(self):
        with self.assertRaises(AccessError):
            self.account_b.with_user(self.manager_b)._wac_force_golive("trust me")
        admin = self.env.ref("base.user_admin")
        admin.write({"company_ids": [(4, self.company_b.id)]})
        wizard = self.env["wac.golive.override"].with_user(admin).create({
            "account_id": self.account_b.id, "reason": "Pilot approved by the owner"})
        self.assertIn("Support process", wizard.open_items)
        wizard.action_confirm()
        self.assertEqual(self.account_b.automation_mode, "enabled")
        self.assertEqual(self.account_b.golive_override_by, admin)
        log = self.env["wac.audit.log"].search([("action", "=", "override"),
                                                ("res_id", "=", self.account_b.id)])
        self.assertEqual((log.user_id, log.new_value), (admin, "Pilot approved by the owner"))
        self.assertIn("Support process", log.note)
        self.assertEqual(log.company_id, self.company_b)
        # The override holds for one go-live: back to dry run, the gate closes again.
        self.account_b.write({"automation_mode": "dry_run"})
        self.assertFalse(self.account_b.golive_override_on)
        with self.assertRaises(UserError):
            self.account_b.with_user(self.manager_b).write({"automation_mode": "enabled"})


class _SelfClosingTags(HTMLParser):
    """Collects the non-void elements written ``<tag/>``: browsers leave them open."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_startendtag(self, tag, attrs):
        if tag not in self.VOID:
            self.found.append(tag)
