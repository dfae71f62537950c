from odoo.tests import tagged

from .common import WacHttpCase
from .common_console import ConsoleMixin, ScreenshotMixin

OVERVIEW = "/odoo/action-whatsapp_coexistence.wac_overview_action"


@tagged("post_install", "-at_install")
class TestConsoleUi(ConsoleMixin, ScreenshotMixin, WacHttpCase):
    """The operator console in headless Chromium, as a WhatsApp manager of one company; the
    pages are also saved as PNG for a person to look at."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager_a.password = "wac_manager_a"
        cls.account_a.write({"quality_rating": "GREEN", "last_check_ok": True,
                             "automation_mode": "dry_run"})

    def test_overview_and_drill_down(self):
        for status in ("sent", "delivered", "read", "read", "dry_run"):
            self.outbound(self.account_a, status)
        self.outbound(self.account_a, "failed", error_code=131026,
                      error_title="Message undeliverable")
        self.outbound(self.account_b, "failed", error_code=131026)
        self.signed_webhook(self.account_a)
        self.start_tour(OVERVIEW, "whatsapp_coexistence_overview", login="wac_manager_a")
        with self.page("wac_manager_a", OVERVIEW) as browser:
            self.shoot(browser, "e-overview", ".o_wac_overview .o_kanban_record", height=600)
            self.click(browser, ".o_kanban_record .o_wac_fig_failed_7d")
            self.shoot(browser, "e-drill-failed", ".o_list_view .o_data_row")
            self.click(browser, ".o_list_view .o_data_row td.o_data_cell")
            self.shoot(browser, "e-message", ".o_form_view [name=status]")

    def test_golive_gate_refuses_then_accepts(self):
        self.make_ready(self.account_a)
        form = "/odoo/action-whatsapp_coexistence.wac_account_action/%d" % self.account_a.id
        with self.page("wac_manager_a", form) as browser:
            self.click(browser, "a.nav-link[name=readiness]")
            self.shoot(browser, "e-readiness-before", ".o_wac_readiness li[data-key=support]",
                       height=1250)
        with self.page("wac_manager_a", form) as browser:
            self.click(browser, "div[name=automation_mode] input[data-value=enabled]")
            self.click(browser, ".o_form_button_save")
            self.shoot(browser, "e-gate-refused", ".o_error_dialog")
        self.start_tour(form, "whatsapp_coexistence_golive_gate", login="wac_manager_a")
        self.assertEqual(self.account_a.automation_mode, "enabled")
        self.assertTrue(self.account_a.support_attested and self.account_a.compliance_attested)
        with self.page("wac_manager_a", form) as browser:
            self.click(browser, "a.nav-link[name=readiness]")
            self.shoot(browser, "e-readiness", ".o_wac_readiness li[data-key=compliance]",
                       height=1250)
