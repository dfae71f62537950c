import json

from odoo.tests import tagged

from .common import CLINIC, WacHttpCase


@tagged("post_install", "-at_install")
class TestOnboarding(WacHttpCase):
    """Embedded Signup against the fake Graph server, as Meta's tech provider flow runs."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager_a.password = "wac_manager_a"
        cls.manager_b.password = "wac_manager_b"

    def setUp(self):
        super().setUp()
        # A company that has never connected: only the WABA id will come back from Meta.
        self.account_a.sudo().write({"phone_number_id": False, "state": "draft",
                                     "access_token_enc": False, "token_set_on": False})

    def open_start_page(self, login="wac_manager_a"):
        self.authenticate(login, login)
        return self.url_open("/whatsapp_coexistence/onboarding/%d" % self.account_a.id)

    def finish(self, onboarding, code, event="FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
               data=None):
        session = {"type": "WA_EMBEDDED_SIGNUP", "event": event,
                   "data": {"waba_id": CLINIC["waba_id"]} if data is None else data}
        response = self.url_open(
            "/whatsapp_coexistence/onboarding/finish",
            data=json.dumps({"jsonrpc": "2.0", "method": "call", "params": {
                "onboarding_id": onboarding.id, "code": code, "session": session}}),
            headers={"Content-Type": "application/json"})
        self.assertEqual(response.status_code, 200)
        return response.json()

    def test_coexistence_signup(self):
        page = self.open_start_page()
        self.assertEqual(page.status_code, 200)
        self.assertIn("Connect your WhatsApp Business number", page.text)
        self.assertNotIn(self.fake.app_secret, page.text)
        onboarding = self.env["wac.onboarding"].search([("account_id", "=", self.account_a.id)])
        self.assertEqual((onboarding.state, onboarding.user_id), ("started", self.manager_a))

        code = self.fake.issue_code(waba_id=CLINIC["waba_id"])["code"]
        result = self.finish(onboarding, code)["result"]
        self.assertTrue(result["ok"], result["message"])
        self.assertNotIn("EAAG", json.dumps(result))

        self.assertRecordValues(self.account_a, [{
            "state": "connected", "phone_number_id": CLINIC["phone_number_id"],
            "verified_name": "Clínica Sorriso", "is_on_biz_app": True,
            "onboarded_by": self.manager_a.id, "history_state": "requested"}])
        self.assertTrue(self.account_a.token_set_on)
        self.assertEqual(self.account_a.action_test_connection()["params"]["type"], "success")
        self.assertRecordValues(onboarding, [{"state": "connected", "coexistence": True}])
        self.assertTrue(onboarding.contacts_request_id and onboarding.history_request_id)
        # Meta's order: code, phone lookup, subscription, no /register, contacts then history.
        self.assert_graph_called("GET", "/oauth/access_token")
        self.assert_graph_called("GET", "/%s/phone_numbers" % CLINIC["waba_id"])
        self.assert_graph_called("POST", "/%s/subscribed_apps" % CLINIC["waba_id"])
        self.assert_graph_called("POST", "/register", count=0)
        syncs = self.assert_graph_called("POST", "/smb_app_data", count=2)
        self.assertEqual([s["json"]["sync_type"] for s in syncs],
                         ["smb_app_state_sync", "history"])
        self.assertTrue(any("coexistence with the Business App" in body
                            for body in self.account_a.message_ids.mapped("body")))

    def test_expired_or_reused_code_fails_visibly(self):
        self.open_start_page()
        onboarding = self.env["wac.onboarding"].search([("account_id", "=", self.account_a.id)])
        code = self.fake.issue_code(waba_id=CLINIC["waba_id"], ttl=0)["code"]
        result = self.finish(onboarding, code)["result"]
        self.assertFalse(result["ok"])
        self.assertEqual(onboarding.state, "failed")
        self.assertIn("expired", onboarding.error)
        self.assertEqual(self.account_a.state, "draft")
        self.assert_graph_called("POST", "/subscribed_apps", count=0)
        again = self.finish(onboarding, code)["result"]
        self.assertIn("already", again["message"])

    def test_cancelled_in_meta_window(self):
        self.open_start_page()
        onboarding = self.env["wac.onboarding"].search([("account_id", "=", self.account_a.id)])
        result = self.finish(onboarding, "", event="CANCEL",
                             data={"current_step": "PHONE_NUMBER_SETUP"})["result"]
        self.assertFalse(result["ok"])
        self.assertEqual(onboarding.state, "cancelled")
        self.assertIn("PHONE_NUMBER_SETUP", onboarding.error)
        self.assert_graph_called("GET", "/oauth/access_token", count=0)

    def test_other_company_manager_cannot_start(self):
        page = self.open_start_page(login="wac_manager_b")
        self.assertEqual(page.status_code, 404)
        self.assertFalse(self.env["wac.onboarding"].search([]))

    def test_disconnect_unsubscribes_and_forgets_the_token(self):
        self.account_a._wac_set_token(CLINIC["token"])
        self.account_a.with_user(self.manager_a).action_wac_disconnect()
        self.assert_graph_called("DELETE", "/%s/subscribed_apps" % CLINIC["waba_id"])
        self.assertRecordValues(self.account_a, [{"state": "disconnected",
                                                  "token_set_on": False}])
        self.assertFalse(self.account_a.sudo().access_token_enc)
        audit = self.account_a.onboarding_ids
        self.assertEqual((audit.state, audit.user_id), ("disconnected", self.manager_a))
        log = self.env["wac.audit.log"].search([("action", "=", "disconnect")])
        self.assertEqual((log.user_id, log.company_id), (self.manager_a, self.company_a))

    def test_sandbox_page_in_the_browser(self):
        self.start_tour("/whatsapp_coexistence/onboarding/%d" % self.account_a.id,
                        "whatsapp_coexistence_onboarding", login="wac_manager_a")
        self.assertEqual(self.account_a.state, "connected")
        self.assertEqual(self.account_a.phone_number_id, CLINIC["phone_number_id"])

