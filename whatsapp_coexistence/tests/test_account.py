from psycopg2 import IntegrityError

from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import CLINIC, WacTransactionCase


@tagged("post_install", "-at_install")
class TestAccount(WacTransactionCase):
    def test_connection_success(self):
        action = self.account_a.action_test_connection()
        self.assertEqual(action["params"]["type"], "success")
        self.assertIn("Clínica Sorriso", action["params"]["message"])
        self.assertRecordValues(self.account_a, [{
            "state": "connected", "verified_name": "Clínica Sorriso", "quality_rating": "GREEN",
            "is_on_biz_app": True, "last_check_ok": True, "last_error": False,
        }])
        (call,) = self.assert_graph_called("GET", "/" + CLINIC["phone_number_id"])
        self.assertIn("verified_name", call["query"]["fields"])
        self.assertEqual(call["headers"]["Authorization"], "Bearer …0001")

    def test_connection_revoked_token_says_what_to_do(self):
        self.account_a._wac_set_token("EAAGrevoked000000000000000000000000009")
        action = self.account_a.action_test_connection()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("new System User token", action["params"]["message"])
        self.assertNotIn("EAAGrevoked", action["params"]["message"])
        self.assertEqual(self.account_a.state, "needs_reauth")
        self.assertFalse(self.account_a.last_check_ok)
        self.assertIn("190", self.account_a.last_error)

    def test_connection_unknown_number(self):
        self.account_a.phone_number_id = "999999999999"
        action = self.account_a.action_test_connection()
        self.assertIn("Phone Number ID", action["params"]["message"])
        self.assertEqual(self.account_a.last_check_ok, False)

    def test_connection_meta_unreachable(self):
        self.fake.add_fault(drop=True, times=1)
        action = self.account_a.action_test_connection()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("could not be reached", action["params"]["message"])
        self.assertEqual(self.account_a.state, "connected", "a network error is not a token error")

    def test_connection_meta_overloaded(self):
        self.fake.add_fault(status=503, code=131016, times=1)
        action = self.account_a.action_test_connection()
        self.assertIn("131016", action["params"]["message"])
        self.assertIn("try again", action["params"]["message"])

    def test_token_is_write_only_and_encrypted(self):
        self.account_a.access_token = " EAAGnewtoken00000000000000000000004321 "
        self.assertFalse(self.account_a.access_token)
        self.assertEqual(self.account_a.read(["access_token"])[0]["access_token"], False)
        self.assertIn("…4321", self.account_a.token_info)
        ciphertext = self.account_a.sudo().access_token_enc
        self.assertNotIn("EAAGnewtoken", ciphertext)
        self.assertEqual(self.env["wac.vault"]._decrypt(ciphertext),
                         "EAAGnewtoken00000000000000000000004321")
        logged = self.account_a.message_ids.mapped("body")
        self.assertTrue(any("…4321" in body for body in logged))
        self.assertFalse(any("EAAGnewtoken" in body for body in logged))

    def test_ids_are_unique_across_companies(self):
        self.account_b.phone_number_id = False
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.cr.savepoint():
            self.account_b.phone_number_id = CLINIC["phone_number_id"]
            self.account_b.flush_recordset()
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.cr.savepoint():
            self.account_b.waba_id = CLINIC["waba_id"]
            self.account_b.flush_recordset()
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.cr.savepoint():
            self.env["wac.account"].create({"company_id": self.company_a.id})
            self.env.flush_all()

    def test_graph_ids_must_be_numeric(self):
        with self.assertRaisesRegex(ValidationError, "numeric id"):
            self.account_a.waba_id = "my-waba"

    def test_pilot_allowlist_is_normalized(self):
        self.account_a.pilot_allowlist = "(11) 98765-1234, +55 21 99876 5432\n\n+5511987651234"
        self.assertEqual(self.account_a.pilot_allowlist, "+5511987651234\n+5521998765432")
        # One person is one number: the legacy 8-digit form of a Brazilian mobile matches too.
        self.assertEqual(self.account_a._pilot_numbers(), {
            "5511987651234", "551187651234", "5521998765432", "552198765432"})
        with self.assertRaisesRegex(ValidationError, "not-a-number"):
            self.account_a.pilot_allowlist = "+55 11 91234-5678\nnot-a-number"

    def test_readiness_credentials_and_signup(self):
        self.account_b.write({"last_check_ok": False})
        items = {item.key: item for item in self.account_b._wac_readiness()}
        self.assertTrue(items["credentials"].ok, items["credentials"].missing)
        self.assertFalse(items["signup"].ok)
        self.account_b.action_test_connection()
        items = {item.key: item for item in self.account_b._wac_readiness()}
        self.assertTrue(items["signup"].ok)
