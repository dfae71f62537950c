from odoo.tests import tagged
from odoo.tools import mute_logger

from . import payloads as P
from .common import WacHttpCase

#: The shapes that change the account itself (its connection state); every other one only
#: adds rows next to it (messages, contacts, templates, history chunks).
ACCOUNT_SHAPES = {P.account_update_partner_removed, P.offboarded, P.reconnected}
QUIET = ("odoo.addons.whatsapp_coexistence.models.wac_webhook_delivery",
         "odoo.addons.whatsapp_coexistence.models.wac_webhook_event")


@tagged("post_install", "-at_install")
class TestWebhookAccountRow(WacHttpCase):
    """No hot row (issue 9): a webhook job that does not change the account itself never
    updates its ``wac_account`` row, not even its ``write_date``. Every job of a company
    would otherwise serialize on that row, and the losers log serialization failures.

    A row's ``ctid`` moves on every ``UPDATE`` (a new tuple version), even inside the test's
    single transaction. The account's ``write_date`` is set back a day first: the ORM skips
    a value equal to the cached one, and the setup wrote the transaction's own ``now()``.
    """

    def setUp(self):
        super().setUp()
        self.env.flush_all()
        self.env.cr.execute("UPDATE wac_account SET write_date = write_date - interval '1 day'"
                            " WHERE id = %s", [self.account_a.id])
        self.account_a.invalidate_recordset(["write_date"])

    def account_row_version(self):
        self.env.flush_all()
        self.env.cr.execute("SELECT ctid::text FROM wac_account WHERE id = %s",
                            [self.account_a.id])
        return self.env.cr.fetchone()[0]

    def test_jobs_of_every_other_shape_leave_the_account_row_alone(self):
        for factory in P.ALL_FACTORIES:
            if factory in ACCOUNT_SHAPES:
                continue
            with self.subTest(shape=factory.__name__):
                before = self.account_row_version()
                with mute_logger(*QUIET), self.processing():
                    self.assertEqual(self.post_webhook(factory()).status_code, 200)
                self.assertEqual(self.account_row_version(), before,
                                 "%s updated the account row" % factory.__name__)

    def test_a_delivery_of_many_changes_leaves_the_account_row_alone(self):
        payload = P.inbound_text()
        history = P.history_chunk()["entry"][0]["changes"][0]
        prefs = P.user_preferences()["entry"][0]["changes"][0]
        payload["entry"][0]["changes"] += [history, prefs] * 20
        before = self.account_row_version()
        with mute_logger(*QUIET), self.processing():
            self.assertEqual(self.post_webhook(payload).status_code, 200)
        self.assertEqual(self.account_row_version(), before)

    def test_account_events_that_change_nothing_leave_the_account_row_alone(self):
        """The fuzz found these: a quality update that names no event Odoo acts on nor a
        limit, and the same disconnection in a second delivery (Meta sends a new one, with
        another ``time``), each updated the row's ``write_date`` alone."""
        quality = P.envelope("phone_number_quality_update", {
            "display_phone_number": "5511987654321", "event": "ONBOARDING"}, time=1750030073)
        first = P.account_update_partner_removed(time=1739212624)
        again = P.account_update_partner_removed(time=1739212699)
        for payload, changes in ((quality, False), (first, True), (again, False)):
            before = self.account_row_version()
            with mute_logger(*QUIET), self.processing():
                self.assertEqual(self.post_webhook(payload).status_code, 200)
            self.assertEqual(self.account_row_version() != before, changes, payload)
        self.assertRecordValues(self.account_a, [{
            "state": "disconnected", "automation_paused": True}])
        activities = self.env["mail.activity"].search([
            ("res_model", "=", "wac.account"), ("res_id", "=", self.account_a.id),
            ("summary", "=", "WhatsApp automation paused")])
        self.assertEqual(len(activities), len(self.account_a._wac_managers()),
                         "one to-do per manager, not one per delivery")
