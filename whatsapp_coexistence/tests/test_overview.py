from datetime import timedelta

from odoo.exceptions import AccessError
from odoo.tests import tagged

from ..const import CHANNEL_WHATSAPP
from .common import WacTransactionCase
from .common_console import ConsoleMixin


@tagged("post_install", "-at_install")
class TestOverview(ConsoleMixin, WacTransactionCase):
    """The figures of an overview card, and the lists they open."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["wac.message"].search([]).unlink()

    def card(self, account=None, user=None):
        account = (account or self.account_a).with_user(user or self.manager_a)
        account.invalidate_recordset()
        return account

    def opened(self, account, figure, user=None):
        """The records of the list a click on ``figure`` opens."""
        action = account.with_user(user or self.manager_a).with_context(
            wac_figure=figure).action_wac_open_figure()
        return self.env[action["res_model"]].with_user(user or self.manager_a).search(
            action["domain"])

    def test_funnel_over_24_hours_and_7_days(self):
        for status in ("sent", "delivered", "read", "failed", "dry_run"):
            self.outbound(self.account_a, status)
        self.outbound(self.account_a, "read", age=timedelta(days=3))
        self.outbound(self.account_a, "failed", age=timedelta(days=10))
        self.outbound(self.account_b, "failed")
        card = self.card()
        self.assertEqual(
            [card.ov_sent_24h, card.ov_delivered_24h, card.ov_read_24h, card.ov_failed_24h],
            [3, 2, 1, 1])
        self.assertEqual(
            [card.ov_sent_7d, card.ov_delivered_7d, card.ov_read_7d, card.ov_failed_7d],
            [4, 3, 2, 1])
        self.assertAlmostEqual(card.ov_failure_rate_7d, 20.0)
        for figure, field in (("sent_7d", "ov_sent_7d"), ("read_24h", "ov_read_24h"),
                              ("failed_7d", "ov_failed_7d")):
            opened = self.opened(self.account_a, figure)
            self.assertEqual(len(opened), card[field], figure)
            self.assertEqual(opened.company_id, self.company_a)

    def test_uncertain_jobs_alerts_and_last_webhook(self):
        self.outbound(self.account_a, "pending", wa_send_key="wac:1:reminder:1:x",
                      wa_attempt_open=True, wamid=False)
        self.outbound(self.account_a, "failed", wa_send_key="wac:2:reminder:1:x", wamid=False,
                      wa_uncertain=True)
        # A failure Meta explained is not uncertain.
        self.outbound(self.account_a, "failed", wa_send_key="wac:3:reminder:1:x", wamid=False,
                      error_code=131026)
        self.account_a.activity_schedule("mail.mail_activity_data_todo",
                                         user_id=self.manager_a.id, summary="Paused")
        event = self.signed_webhook(self.account_a)
        self.env["wac.template"].with_company(self.company_a).with_delay(
            channel=CHANNEL_WHATSAPP)._wac_cron_sync_templates()
        card = self.card()
        self.assertEqual((card.ov_uncertain, card.ov_alerts, card.ov_jobs_waiting, card.ov_held),
                         (2, 1, 1, 0))
        self.assertEqual(card.ov_last_webhook, event.received_at)
        self.assertEqual(len(self.opened(self.account_a, "uncertain")), 2)
        self.assertEqual(self.card(self.account_b, self.manager_b).ov_jobs_waiting, 0)

    def test_manager_sees_only_their_company(self):
        self.outbound(self.account_b, "sent")
        cards = self.env["wac.account"].with_user(self.manager_a).search([])
        self.assertEqual(cards, self.account_a)
        self.assertEqual(cards.ov_sent_24h, 0)

    def test_reporting_views_load_for_a_manager(self):
        self.outbound(self.account_a, "read")
        self.signed_webhook(self.account_a)
        for xmlid, groupby in (
                ("wac_message_action_analysis", ["message_at:day", "status"]),
                ("wac_message_action_attempts", ["wa_kind", "status"]),
                ("wac_webhook_event_action_analysis", ["received_at:day", "field"])):
            action = self.env.ref("whatsapp_coexistence." + xmlid)
            Model = self.env[action.res_model].with_user(self.manager_a)
            views = Model.get_views([(False, "graph"), (False, "pivot"), (False, "search")])
            self.assertIn("graph", views["views"])
            groups = Model.read_group([], ["__count"], groupby, lazy=False)
            self.assertTrue(groups, xmlid)
        # Refused webhooks mix tenants: their reporting is for administrators.
        with self.assertRaises(AccessError):
            self.env["wac.webhook.rejection"].with_user(self.manager_a).read_group(
                [], ["__count"], ["reason"])
