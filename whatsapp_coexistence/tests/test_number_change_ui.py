from odoo.tests import tagged

from .common import CLINIC, WacHttpCase
from .common_console import ScreenshotMixin
from .test_business_number_change import NEW_DISPLAY, NEW_ID

ACCOUNT = "/odoo/action-whatsapp_coexistence.wac_account_action/%d"


@tagged("post_install", "-at_install")
class TestNumberChangeUi(ScreenshotMixin, WacHttpCase):
    """*Change number* in headless Chromium, as the clinic's WhatsApp manager; the wizard is
    saved as PNG for a person to look at."""

    def setUp(self):
        super().setUp()
        self.manager_a.password = "wac_manager_a"
        self.fake.add_phone(CLINIC["waba_id"], NEW_ID, NEW_DISPLAY, is_on_biz_app=True,
                            verified_name="Clínica Sorriso")

    def test_manager_changes_the_number(self):
        with self.page("wac_manager_a", ACCOUNT % self.account_a.id) as browser:
            self.click(browser, "button[name=action_wac_change_number]")
            # Only the other number is offered: the current one is shown above it.
            radio = ".modal [name=option_id] input[type=radio]"
            self.wait_for(browser, radio)
            self.shoot(browser, "n-change-number", ".modal [name=current_number]", height=700)
            self.click(browser, radio)
            self.click(browser, ".modal-footer button[name=action_confirm]")
            closed = browser._wait_ready("!document.querySelector('.modal')", timeout=30)
            self.assertTrue(closed, "the wizard never closed")
            # An input's value is a property, not an attribute: no CSS selector can wait for it.
            shown = browser._wait_ready(
                "document.querySelector('[name=display_phone_number] input').value === %r"
                % NEW_DISPLAY, timeout=30)
            self.assertTrue(shown, "the account never showed the new number")
            self.shoot(browser, "n-number-changed", ".o_form_view [name=display_phone_number]")
        self.env.invalidate_all()
        self.assertEqual(self.account_a.phone_number_id, NEW_ID)
        self.assertEqual(self.account_a.number_change_ids.user_id, self.manager_a)
