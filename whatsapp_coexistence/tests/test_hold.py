"""Held, not lost, and Resume: every way into *paused* walked to its way out, against the
fake Graph server (issue #11)."""

from collections import Counter
from datetime import timedelta

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.queue_job.tests.common import trap_jobs

from ..tools.wa_cloud import webhook
from . import payloads
from .common import CLINIC
from .common_automation import WacAutomationCase

QUIET = "odoo.addons.whatsapp_coexistence.models.wac_send"
NEW_TOKEN = "EAAGfakeclinicNEW00000000000000000000"


@tagged("post_install", "-at_install")
class TestHold(WacAutomationCase):
    def setUp(self):
        super().setUp()
        self.account_a.write({"reminder_offset_hours": 1, "recipient_daily_cap": 0})
        self.t0 = fields.Datetime.now().replace(second=0, microsecond=0)

    # ------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------

    def plan(self, partners, start, **vals):
        """Create an appointment as of ``t0``; return it and its trapped send jobs (a start
        5 h away queues the confirmation only: the reminder is the planner's, later)."""
        with self.clock(self.t0):
            trap, event = self.enqueue(self.make_event, partners, start=start, **vals)
        return event, trap

    def run_trapped(self, trap, as_of):
        with self.clock(as_of):
            trap.perform_enqueued_jobs()

    def resume(self, reason="token replaced"):
        """Resume as company A's manager; run the jobs it releases as of ``t0`` + 2 h."""
        with trap_jobs() as trap:
            released = self.account_a.with_user(self.manager_a)._wac_resume(reason)
        self.run_trapped(trap, self.t0 + timedelta(hours=2))
        return released

    def sends_per_key(self):
        return Counter(m["biz_opaque_callback_data"]
                       for m in self.sent_messages(CLINIC["phone_number_id"]))

    def revoke_token(self):
        self.fake.set_token(CLINIC["token"], revoked=True)

    def new_token(self):
        """The business generates a new token; a manager pastes it in the account."""
        self.fake.add_token(NEW_TOKEN, [CLINIC["waba_id"]])
        self.account_a.with_user(self.manager_a).write({"access_token": NEW_TOKEN})

    def account_update(self, payload):
        value = payload["entry"][0]["changes"][0]["value"]
        return [self.account_a._wac_apply_account_update(update)
                for update in webhook.account_update(value)]

    # ------------------------------------------------------------
    # The issue's figure: a 2-hour pause with 50 reminders due
    # ------------------------------------------------------------

    def test_two_hour_pause_fifty_reminders_held_then_sent_once_stale_dropped(self):
        relevant, traps = [], []
        for k in range(50):
            event, trap = self.plan(self.maria, self.t0 + timedelta(hours=2, minutes=10 + k))
            relevant.append(event)
            traps.append(trap)
        stale = []
        for k in range(3):  # they start during the pause
            event, trap = self.plan(self.joao, self.t0 + timedelta(hours=1, minutes=30 + k))
            stale.append(event)
            traps.append(trap)
        cancelled, trap = self.plan(self.joao, self.t0 + timedelta(hours=3))
        traps.append(trap)
        opted, trap = self.plan(self.mary, self.t0 + timedelta(hours=3))
        traps.append(trap)
        with mute_logger(QUIET):
            self.account_a._wac_pause("Meta blocks sending (test)")
            # Every job comes due during the pause, and each runs twice (a retry).
            for trap in traps:
                jobs = list(trap.enqueued_jobs)
                self.run_trapped(trap, self.t0 + timedelta(minutes=59))
                trap.enqueued_jobs = jobs
                self.run_trapped(trap, self.t0 + timedelta(hours=1, minutes=29))
        self.assertEqual(self.sent_messages(), [], "nothing goes during the pause")
        held = self.env["wac.message"].search([("status", "=", "held"),
                                               ("account_id", "=", self.account_a.id)])
        # 55 reminders and 55 confirmations held.
        self.assertEqual(len(held), 110)
        self.assertTrue(all(held.mapped("wa_held_reason")))
        # Meanwhile one appointment is cancelled and one customer opts out.
        with trap_jobs() as trap:
            cancelled.action_archive()
        self.run_trapped(trap, self.t0 + timedelta(hours=1, minutes=40))
        contacts = self.env["wac.contact"]._wac_resolve(self.account_a,
                                                        [("5521998761111", None, "Mary")])
        contacts["5521998761111"]._wac_set_opt_out(True, "keyword SAIR")

        released = self.resume()

        self.assertGreaterEqual(released, 110)
        per_key = self.sends_per_key()
        self.assertEqual(max(per_key.values()), 1, "nothing twice")
        for event in relevant:
            for kind in ("confirmation", "reminder"):
                self.assertTrue(self.message_of(event, kind, self.maria).wamid)
        self.assertEqual(len(per_key), 100, "the 50 relevant appointments, both messages")
        for event in stale:
            message = self.message_of(event, "reminder", self.joao)
            self.assertEqual(message.status, "dropped")
            self.assertIn("already started", message.error_details)
        self.assertEqual(self.message_of(cancelled, "reminder", self.joao).status, "dropped")
        self.assertIn("cancelled",
                      self.message_of(cancelled, "reminder", self.joao).error_details)
        self.assertEqual(self.message_of(cancelled, "cancellation", self.joao).status,
                         "dropped", "the customer never heard of it: no cancellation either")
        self.assertEqual(self.message_of(opted, "reminder", self.mary).status, "dropped")
        self.assertIn("opted out", self.message_of(opted, "reminder", self.mary).error_details)
        # A second release (the cron, a second Resume) sends nothing again.
        with trap_jobs() as trap:
            self.env["wac.message"]._wac_release_held()
        self.run_trapped(trap, self.t0 + timedelta(hours=2))
        self.assertEqual(self.sends_per_key(), per_key)

    # ------------------------------------------------------------
    # Every way into "paused", to its way out
    # ------------------------------------------------------------

    def test_expired_token_190_new_token_then_resume(self):
        event, trap = self.plan(self.maria, self.t0 + timedelta(hours=5))
        self.revoke_token()
        with mute_logger(QUIET):
            self.run_trapped(trap, self.t0)
        self.assertRecordValues(self.account_a, [{"automation_paused": True,
                                                  "state": "needs_reauth"}])
        self.assertEqual(self.message_of(event, "confirmation", self.maria).status, "held")
        # Resume refuses while the token is bad, and says why.
        check = self.account_a._wac_resume_check()
        self.assertTrue(any("Test connection fails" in b for b in check.blockers), check)
        with self.assertRaisesRegex(UserError, "Test connection fails"):
            self.account_a.with_user(self.manager_a)._wac_resume("just try")
        self.assertTrue(self.account_a.automation_paused)
        # A new token offers Resume (chatter and banner), never resumes silently.
        self.new_token()
        self.assertTrue(self.account_a.automation_paused)
        self.assertIn("press Resume", self.account_a.message_ids[0].body)
        action = self.account_a.action_test_connection()
        self.assertIn("press Resume", action["params"]["message"])
        self.assertTrue(self.account_a.wac_resume_offered)
        self.assertTrue(self.account_a.automation_paused)

        self.resume("new System User token")

        self.assertFalse(self.account_a.automation_paused)
        self.assertTrue(self.message_of(event, "confirmation", self.maria).wamid)
        log = self.env["wac.audit.log"].search([("action", "=", "resume"),
                                                ("res_id", "=", self.account_a.id)])
        self.assertEqual((log.user_id, log.new_value), (self.manager_a, "new System User token"))
        self.assertIn("190", log.old_value)
        self.assertIn("Automation resumed by", self.account_a.message_ids[0].body)
        self.assertFalse(self.account_a.activity_ids.filtered(
            lambda a: a.summary == "WhatsApp automation paused"), "the pause's to-do is done")

    def test_other_tenant_blocking_error_then_resume(self):
        event, trap = self.plan(self.maria, self.t0 + timedelta(hours=5))
        self.fake.add_fault(code=131031, match={"path": "/messages"})  # account locked
        with mute_logger(QUIET):
            self.run_trapped(trap, self.t0)
        self.assertRecordValues(self.account_a, [{"automation_paused": True,
                                                  "state": "connected"}])
        self.assertEqual(self.message_of(event, "confirmation", self.maria).status, "held")
        self.resume("Meta unlocked the account")
        self.assertFalse(self.account_a.automation_paused)
        self.assertEqual(len(self.sends_per_key()), 1)

    def test_partner_removed_then_signup_then_resume(self):
        self.account_update(payloads.account_update_partner_removed(waba_id=CLINIC["waba_id"]))
        self.assertRecordValues(self.account_a, [{"automation_paused": True,
                                                  "state": "disconnected"}])
        event, trap = self.plan(self.maria, self.t0 + timedelta(hours=5))
        self.run_trapped(trap, self.t0)
        self.assertEqual(self.message_of(event, "confirmation", self.maria).status, "held")
        # Resume refuses while Meta has the number disconnected.
        self.assertTrue(any("connect it again" in b
                            for b in self.account_a._wac_resume_check().blockers))
        # A new Embedded Signup connects the number again and offers Resume.
        code = self.fake.issue_code(waba_id=CLINIC["waba_id"])["code"]
        onboarding = self.env["wac.onboarding"].with_user(self.manager_a)._wac_start(
            self.account_a)
        ok, message = onboarding.with_user(self.manager_a)._wac_finish(code, {
            "event": "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
            "data": {"waba_id": CLINIC["waba_id"]}})
        self.assertTrue(ok, message)
        self.assertRecordValues(self.account_a, [{"automation_paused": True,
                                                  "state": "connected",
                                                  "wac_resume_offered": True}])
        self.assertTrue(any("press Resume" in (m.body or "")
                            for m in self.account_a.message_ids))
        self.resume("signed up again")
        self.assertTrue(self.message_of(event, "confirmation", self.maria).wamid)

    def test_offboarded_then_meta_reconnects_releases_held(self):
        self.account_update(payloads.offboarded(waba_id=CLINIC["waba_id"]))
        self.assertRecordValues(self.account_a, [{"automation_paused": True,
                                                  "state": "offboarded"}])
        event, trap = self.plan(self.maria, self.t0 + timedelta(hours=5))
        self.run_trapped(trap, self.t0)
        self.assertEqual(self.message_of(event, "confirmation", self.maria).status, "held")
        self.assertTrue(any("reconnects it by itself" in b
                            for b in self.account_a._wac_resume_check().blockers))
        with trap_jobs() as trap:
            self.account_update(payloads.reconnected(waba_id=CLINIC["waba_id"]))
        self.run_trapped(trap, self.t0)
        self.assertFalse(self.account_a.automation_paused)
        self.assertTrue(self.message_of(event, "confirmation", self.maria).wamid)
        self.assertTrue(self.env["wac.audit.log"].search([
            ("action", "=", "resume"), ("res_id", "=", self.account_a.id),
            ("note", "=", "ACCOUNT_RECONNECTED")]))

    # ------------------------------------------------------------
    # Kill switch, drop all, who may, alert
    # ------------------------------------------------------------

    def test_kill_switch_on_holds_off_releases(self):
        self.save_settings(wac_kill_switch=True)
        event, trap = self.plan(self.maria, self.t0 + timedelta(hours=5))
        self.run_trapped(trap, self.t0)
        self.assertEqual(self.message_of(event, "confirmation", self.maria).status, "held")
        self.assertIn("kill switch", self.message_of(event, "confirmation",
                                                     self.maria).wa_held_reason)
        self.assertEqual(self.account_a.wac_held_count, 1)
        self.assertEqual(self.sent_messages(), [])
        with trap_jobs() as trap:
            self.save_settings(wac_kill_switch=False)
        self.run_trapped(trap, self.t0)
        self.assertTrue(self.message_of(event, "confirmation", self.maria).wamid)
        self.assertEqual(len(self.sends_per_key()), 1)

    def save_settings(self, **values):
        self.env["res.config.settings"].create(values).execute()

    def test_drop_all_held(self):
        self.account_a._wac_pause("test pause")
        event, trap = self.plan(self.maria | self.joao, self.t0 + timedelta(hours=5))
        self.run_trapped(trap, self.t0)
        self.assertEqual(self.account_a.wac_held_count, 2)
        with self.assertRaises(UserError):
            self.account_a.with_user(self.user_a).action_wac_drop_held()
        self.account_a.with_user(self.manager_a).action_wac_drop_held()
        for partner in (self.maria, self.joao):
            message = self.message_of(event, "confirmation", partner)
            self.assertEqual(message.status, "dropped")
            self.assertIn("Dropped by", message.error_details)
        self.assertEqual(self.account_a.wac_held_count, 0)
        self.resume()
        self.assertEqual(self.sent_messages(), [], "dropped messages never go")

    def test_only_managers_resume_and_a_reason_is_required(self):
        self.account_a._wac_pause("test pause")
        with self.assertRaises(UserError):
            self.account_a.with_user(self.user_a)._wac_resume("me")
        wizard = self.env["wac.resume"].with_user(self.manager_a).browse(
            self.account_a.with_user(self.manager_a).action_wac_resume()["res_id"])
        self.assertTrue(wizard.can_resume, wizard.blockers)
        self.assertTrue(wizard.warnings, "the forced go-live's open items are shown")
        with self.assertRaisesRegex(UserError, "Say why"):
            wizard.action_confirm()
        wizard.reason = "checked with Meta support"
        wizard.action_confirm()
        self.assertFalse(self.account_a.automation_paused)

    def test_automation_disabled_meanwhile_drops_held_on_release(self):
        self.account_a._wac_pause("test pause")
        event, trap = self.plan(self.maria, self.t0 + timedelta(hours=5))
        self.run_trapped(trap, self.t0)
        self.account_a.write({"automation_paused": False, "automation_mode": "disabled"})
        with trap_jobs() as trap:
            self.env["wac.message"]._wac_cron_release_held()
        self.run_trapped(trap, self.t0)
        message = self.message_of(event, "confirmation", self.maria)
        self.assertEqual(message.status, "dropped")
        self.assertIn("disabled", message.error_details)
        self.assertEqual(self.sent_messages(), [])

    def test_held_and_dropped_do_not_dilute_the_failure_rate(self):
        """5 failed of 10 sends is 50 %: held and dropped messages were not sent, so they
        are no part of the rate (they made it 5 of 70 before)."""
        now = fields.Datetime.now()
        base = {"company_id": self.company_a.id, "account_id": self.account_a.id,
                "direction": "out", "source": "api", "message_at": now}
        self.env["wac.message"].create(
            [dict(base, status="failed") for _i in range(5)]
            + [dict(base, status="delivered", wamid="wamid.rate%d" % i) for i in range(5)]
            + [dict(base, status="held", wa_held_since=now) for _i in range(50)]
            + [dict(base, status="dropped") for _i in range(10)])
        self.env.flush_all()
        rates = self.account_a._wac_failure_rates(now)
        self.assertIn("5 of 10", rates.get(self.account_a.id) or "")

    def test_held_longer_than_threshold_raises_the_alert(self):
        self.account_a._wac_pause("test pause")
        event, trap = self.plan(self.maria, self.t0 + timedelta(hours=5))
        self.run_trapped(trap, self.t0)
        message = self.message_of(event, "confirmation", self.maria)
        now = fields.Datetime.now()
        self.assertEqual(self.account_a._wac_held_message_counts(now), {})
        message.write({"wa_held_since": now - timedelta(minutes=61)})
        self.assertEqual(self.account_a._wac_held_message_counts(now),
                         {self.account_a.id: 1})
        self.assertEqual(self.account_a.ov_held, 1)

