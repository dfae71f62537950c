from odoo.tests import tagged

from ..const import PARAM_APP_SECRET
from .common import WacHttpCase


@tagged("post_install", "-at_install")
class TestUi(WacHttpCase):
    """The pages a person uses, in headless Chromium."""

    def test_settings_page(self):
        self.start_tour("/odoo/settings#whatsapp_coexistence", "whatsapp_coexistence_settings",
                        login="admin")
        stored = self.env["ir.config_parameter"].sudo().get_param(PARAM_APP_SECRET)
        self.assertNotIn("app-secret-typed-in-the-browser", stored)
        self.assertEqual(self.env["wac.vault"]._app_secret(),
                         "app-secret-typed-in-the-browser")

    def test_manager_tests_the_connection(self):
        self.manager_a.password = "wac_manager_a"
        self.start_tour("/odoo/action-whatsapp_coexistence.wac_account_action/%d"
                        % self.account_a.id, "whatsapp_coexistence_test_connection",
                        login="wac_manager_a")
        self.assertEqual(self.account_a.verified_name, "Clínica Sorriso")
        self.assertTrue(self.account_a.last_check_ok)
