"""The hourly health check against the fake Graph server, and each bad answer it can get."""

import time

from odoo.tests import tagged

from .common import CLINIC, SALON, WacTransactionCase


@tagged("post_install", "-at_install")
class TestHealthCheck(WacTransactionCase):

    def setUp(self):
        super().setUp()
        # Meta-side state a connected number has: our app subscribed to both WABAs.
        for account in self.account_a | self.account_b:
            account._wac_client().subscribe_app(account.waba_id)
        self.fake.clear_requests()

    def alerts(self, account=None, cause=None):
        domain = [("account_id", "=", (account or self.account_a).id), ("state", "!=", "closed")]
        if cause:
            domain.append(("cause", "=", cause))
        return self.env["wac.alert"].search(domain)

    def test_healthy_numbers_are_read_in_three_requests_each(self):
        self.env["wac.account"]._wac_cron_health_check()
        for account, ids in ((self.account_a, CLINIC), (self.account_b, SALON)):
            self.assertEqual(
                (account.health_phone_status, account.quality_rating,
                 account.health_name_status, account.health_messaging_limit,
                 account.health_app_subscribed, account.health_token_valid,
                 account.health_token_expires_on, account.health_error),
                ("CONNECTED", "GREEN", "APPROVED", "TIER_250", "yes", "yes", False, False))
            self.assertTrue(account.health_checked_on)
            sent = [r for r in self.graph_requests()
                    if ids["phone_number_id"] in r["path"] or ids["waba_id"] in r["path"]]
            self.assertEqual(len(sent), 2, "one phone GET, one subscribed_apps GET")
        self.assertEqual(len(self.graph_requests()), 6, "at most 3 requests per company")
        self.assertEqual(len(self.graph_requests("debug_token")), 2)
        self.assertFalse(self.alerts() | self.alerts(self.account_b))

    def test_token_expiring_raises_then_a_system_user_token_clears(self):
        self.fake.set_token(CLINIC["token"], expires_at=time.time() + 3 * 86400)
        self.env["wac.account"]._wac_cron_health_check()
        alert = self.alerts(cause="token")
        self.assertEqual(len(alert), 1)
        self.assertIn("expires on", alert.details)
        self.assertTrue(self.account_a.health_token_expires_on)
        self.assertIn(self.manager_a, alert.activity_ids.user_id)
        self.assertFalse(self.alerts(self.account_b), "the other company is untouched")
        self.fake.set_token(CLINIC["token"], expires_at=0)
        self.env["wac.account"]._wac_cron_health_check()
        self.assertFalse(self.alerts(cause="token"))
        self.assertEqual(alert.state, "closed")
        self.assertFalse(alert.activity_ids, "its activities are marked done")
        self.assertFalse(alert.closed_by, "it closed itself")

    def test_token_far_from_expiry_is_no_alert_and_threshold_is_per_company(self):
        self.fake.set_token(CLINIC["token"], expires_at=time.time() + 20 * 86400)
        self.env["wac.account"]._wac_cron_health_check()
        self.assertFalse(self.alerts(cause="token"))
        self.account_a.alert_token_days = 30
        self.account_a._wac_evaluate_alerts()
        self.assertEqual(len(self.alerts(cause="token")), 1)

    def test_revoked_token_marks_the_account_and_alerts(self):
        self.fake.set_token(CLINIC["token"], revoked=True)
        self.env["wac.account"]._wac_cron_health_check()
        account = self.account_a
        self.assertEqual((account.state, account.health_token_valid), ("needs_reauth", "no"))
        self.assertIn("access token", account.health_error)
        self.assertNotIn(CLINIC["token"], account.health_error)
        self.assertEqual(len(self.alerts(cause="token")), 1)
        self.assertEqual(self.account_b.health_token_valid, "yes")
        # The way out: a new token, then Test connection; the next evaluation closes the alert.
        self.fake.set_token(CLINIC["token"], revoked=False)
        account.access_token = CLINIC["token"]
        self.assertFalse(account.health_token_valid, "what Meta said of the old token is gone")
        account.action_test_connection()
        self.assertEqual(account.state, "connected")
        self.env["wac.account"]._wac_cron_evaluate_alerts()
        self.assertFalse(self.alerts(cause="token"))

    def test_app_unsubscribed_alerts_until_subscribed_again(self):
        self.account_a._wac_client().unsubscribe_app(CLINIC["waba_id"])
        self.env["wac.account"]._wac_cron_health_check()
        self.assertEqual(self.account_a.health_app_subscribed, "no")
        self.assertEqual(len(self.alerts(cause="subscription")), 1)
        self.account_a._wac_client().subscribe_app(CLINIC["waba_id"])
        self.env["wac.account"]._wac_cron_health_check()
        self.assertFalse(self.alerts(cause="subscription"))

    def test_quality_red_alerts_and_green_clears(self):
        self.fake.set_phone(CLINIC["phone_number_id"], quality_rating="RED")
        self.env["wac.account"]._wac_cron_health_check()
        self.assertEqual(self.account_a.quality_rating, "RED")
        self.assertIn("RED", self.alerts(cause="quality").details)
        self.fake.set_phone(CLINIC["phone_number_id"], quality_rating="GREEN")
        self.env["wac.account"]._wac_cron_health_check()
        self.assertFalse(self.alerts(cause="quality"))

    def test_number_not_connected_alerts(self):
        self.fake.set_phone(CLINIC["phone_number_id"], status="DISCONNECTED")
        self.env["wac.account"]._wac_cron_health_check()
        self.assertEqual(self.account_a.health_phone_status, "DISCONNECTED")
        self.assertIn("DISCONNECTED", self.alerts(cause="disconnected").details)

    def test_graph_5xx_is_recorded_without_crash_or_false_alert(self):
        self.fake.add_fault(match={"path": CLINIC["phone_number_id"]}, status=503, code=2)
        self.fake.add_fault(match={"path": "subscribed_apps"}, status=500, code=1)
        self.env["wac.account"]._wac_cron_health_check()
        account = self.account_a
        self.assertTrue(account.health_checked_on)
        self.assertTrue(account.health_error)
        self.assertEqual(account.state, "connected")
        self.assertEqual(account.health_token_valid, "yes", "the token was still read")
        self.assertFalse(self.alerts())
        self.assertFalse(self.account_b.health_error, "the next company was checked")
        self.env["wac.account"]._wac_cron_health_check()
        self.assertFalse(account.health_error, "recovered at the next run")
