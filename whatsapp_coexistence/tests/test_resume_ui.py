from datetime import timedelta

from odoo import fields
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.queue_job.tests.common import trap_jobs

from .common import CLINIC, WacHttpCase
from .common_automation import WacAutomationMixin
from .common_console import ScreenshotMixin
from .test_hold import NEW_TOKEN, QUIET

FORM = "/odoo/action-whatsapp_coexistence.wac_account_action/%d"
MESSAGES = "/odoo/action-whatsapp_coexistence.wac_message_action"


@tagged("post_install", "-at_install")
class TestResumeUi(WacAutomationMixin, ScreenshotMixin, WacHttpCase):
    """Paused by an expired token, with two messages held: a WhatsApp manager of one company
    (not an administrator) sees the banner, pastes a new token, resumes, and sees the held
    messages go. The pages are saved as PNG for a person to look at."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._wac_automation_setup()
        cls.manager_a.password = "wac_manager_a"

    def test_paused_banner_new_token_resume_held_messages_go(self):
        start = fields.Datetime.now().replace(second=0, microsecond=0) + timedelta(hours=30)
        with trap_jobs():
            event = self.make_event(self.maria | self.joao, start=start)
        self.fake.set_token(CLINIC["token"], revoked=True)
        with mute_logger(QUIET):
            self.send(event, "confirmation", self.maria)  # 190: paused, held
            self.send(event, "confirmation", self.joao)  # held
        self.assertEqual(self.account_a.wac_held_count, 2)
        self.fake.add_token(NEW_TOKEN, [CLINIC["waba_id"]])
        form = FORM % self.account_a.id
        with self.page("wac_manager_a", form) as browser:
            self.shoot(browser, "h-paused-banner", ".o_wac_paused_banner")
        with self.page("wac_manager_a", form) as browser:
            self.click(browser, ".o_wac_paused_banner button[name=action_wac_resume]")
            self.shoot(browser, "h-resume-blocked", ".modal .o_wac_resume_blocked")

        self.start_tour(form, "whatsapp_coexistence_new_token", login="wac_manager_a")
        self.assertTrue(self.account_a.automation_paused, "a new token only offers Resume")
        with self.page("wac_manager_a", form) as browser:
            self.click(browser, ".o_wac_paused_banner button[name=action_wac_resume]")
            self.shoot(browser, "h-resume-ready", ".modal .o_wac_resume_ready")

        with trap_jobs() as trap:
            self.start_tour(form, "whatsapp_coexistence_resume", login="wac_manager_a")
        self.assertFalse(self.account_a.automation_paused)
        self.run_jobs(trap)
        for partner in (self.maria, self.joao):
            wamid = self.message_of(event, "confirmation", partner).wamid
            self.assertTrue(wamid)
            # Meta's status webhook (its shape from the fake); the webhook route itself is
            # tested on its own (after a tour, the test harness refuses cookieless requests).
            self.deliver_statuses(self.account_a, wamid, "sent")
        self.assertEqual(len(self.sent_messages()), 2)
        self.start_tour(MESSAGES, "whatsapp_coexistence_held_sent", login="wac_manager_a")
        with self.page("wac_manager_a", MESSAGES) as browser:
            self.shoot(browser, "h-held-sent", ".o_list_view .o_data_row")
