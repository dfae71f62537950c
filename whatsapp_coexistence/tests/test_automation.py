"""Triggers: which jobs an appointment change enqueues (trap_jobs), and why nothing is."""

from datetime import datetime, timedelta

from odoo import fields
from odoo.tests import tagged

from ..const import PARAM_KILL_SWITCH
from ..models.wac_send import send_key, start_key
from .common_automation import FUTURE_START, WacAutomationCase

START = start_key(FUTURE_START)


@tagged("post_install", "-at_install")
class TestAutomationTriggers(WacAutomationCase):
    def test_create_enqueues_confirmation_and_reminder_per_customer(self):
        trap, event = self.enqueue(self.make_event, self.maria | self.joao)
        calls = self.job_calls(trap)
        self.assertEqual(set(calls), {
            (event.id, kind, partner.id, START)
            for kind in ("confirmation", "reminder") for partner in (self.maria, self.joao)
        }, "the organizer (an internal user) gets nothing")
        confirmation = calls[(event.id, "confirmation", self.maria.id, START)]
        self.assertEqual(confirmation["identity_key"],
                         send_key(event.id, "confirmation", self.maria.id, START))
        self.assertEqual(confirmation["channel"], "root.whatsapp")
        self.assertIsNone(confirmation["eta"])
        reminder = calls[(event.id, "reminder", self.maria.id, START)]
        self.assertEqual(reminder["eta"], FUTURE_START - timedelta(hours=24))
        self.assertIn("planned for 2 attendee(s)", event.wa_automation_note)
        self.assertIn("Reminder on", event.wa_automation_note)

    def test_batch_create_spans_companies(self):
        Event = self.env["calendar.event"]
        trap, _events = self.enqueue(Event.create, [
            {"name": "A", "start": FUTURE_START, "stop": FUTURE_START + timedelta(hours=1),
             "partner_ids": [(6, 0, self.maria.ids)], "wa_company_id": self.company_a.id},
            {"name": "B", "start": FUTURE_START, "stop": FUTURE_START + timedelta(hours=1),
             "partner_ids": [(6, 0, self.joao.ids)], "wa_company_id": self.company_b.id},
        ])
        companies = {call.args[0] for call in trap.calls}
        self.assertEqual(companies, {self.company_a.id, self.company_b.id})
        self.assertEqual(len(trap.calls), 4)

    def test_reminder_waits_for_the_end_of_quiet_hours(self):
        self.account_a.write({"quiet_hours_start": 21, "quiet_hours_end": 8})
        start = datetime(2027, 2, 2, 10, 0)  # 07:00 in São Paulo: the reminder would be 07:00
        trap, event = self.enqueue(self.make_event, self.maria, start=start)
        eta = self.job_calls(trap)[(event.id, "reminder", self.maria.id, start_key(start))]["eta"]
        self.assertEqual(eta, datetime(2027, 2, 1, 11, 0), "08:00 local, the end of quiet hours")

    def test_reminder_offset_is_per_company(self):
        self.account_a.reminder_offset_hours = 2
        trap, event = self.enqueue(self.make_event, self.maria)
        eta = self.job_calls(trap)[(event.id, "reminder", self.maria.id, START)]["eta"]
        self.assertEqual(eta, FUTURE_START - timedelta(hours=2))

    def test_no_reminder_when_closer_than_the_offset(self):
        start = fields.Datetime.now().replace(microsecond=0) + timedelta(hours=5)
        trap, event = self.enqueue(self.make_event, self.maria, start=start)
        kinds = {key[1] for key in self.job_calls(trap)}
        self.assertEqual(kinds, {"confirmation"})
        self.assertIn("less than 24", self.chatter(event))

    def test_disabled_mode_enqueues_nothing_and_says_so(self):
        self.account_a.automation_mode = "disabled"
        trap, event = self.enqueue(self.make_event, self.maria)
        trap.assert_jobs_count(0)
        self.assertEqual(event.wa_automation_note,
                         "WhatsApp automation is disabled for Clínica A.")

    def test_not_connected_account_enqueues_nothing_and_logs(self):
        self.account_a.write({"state": "needs_reauth"})
        trap, event = self.enqueue(self.make_event, self.maria)
        trap.assert_jobs_count(0)
        self.assertIn("not connected", event.wa_automation_note)
        self.assertIn("not connected", self.chatter(event))

    def test_past_event_enqueues_nothing(self):
        start = fields.Datetime.now() - timedelta(days=1)
        trap, event = self.enqueue(self.make_event, self.maria, start=start)
        trap.assert_jobs_count(0)
        self.assertEqual(event.wa_automation_note,
                         "The appointment is in the past: no WhatsApp message.")

    def test_kill_switch_stops_enqueue(self):
        self.env["ir.config_parameter"].set_param(PARAM_KILL_SWITCH, True)
        trap, event = self.enqueue(self.make_event, self.maria)
        trap.assert_jobs_count(0)
        self.assertIn("kill switch", event.wa_automation_note)

    def test_paused_company_enqueues_nothing_other_company_does(self):
        self.account_a._wac_pause("token revoked")
        trap, event_a = self.enqueue(self.make_event, self.maria)
        trap.assert_jobs_count(0)
        self.assertIn("paused: token revoked", event_a.wa_automation_note)
        trap, _event_b = self.enqueue(self.make_event, self.joao, company=self.company_b,
                                      user=self.env.user)
        trap.assert_jobs_count(2)

    def test_opted_out_partner_gets_nothing_and_the_chatter_says_why(self):
        contacts = self.env["wac.contact"]._wac_resolve(self.account_a, [("5511991234567",
                                                                         None, "Maria")])
        contacts["5511991234567"]._wac_set_opt_out(True, "keyword SAIR")
        trap, event = self.enqueue(self.make_event, self.maria | self.joao)
        partners = {key[2] for key in self.job_calls(trap)}
        self.assertEqual(partners, {self.joao.id})
        self.assertIn("Maria Silva opted out", self.chatter(event))

    def test_opt_out_is_per_company(self):
        contacts = self.env["wac.contact"]._wac_resolve(self.account_b, [("5511991234567",
                                                                         None, "Maria")])
        contacts["5511991234567"]._wac_set_opt_out(True, "keyword STOP")
        trap, _event = self.enqueue(self.make_event, self.maria)
        self.assertEqual({key[2] for key in self.job_calls(trap)}, {self.maria.id})

    def test_pilot_allowlist_limits_recipients(self):
        self.account_a.pilot_allowlist = "+55 11 98765-1234"
        trap, event = self.enqueue(self.make_event, self.maria | self.joao)
        self.assertEqual({key[2] for key in self.job_calls(trap)}, {self.joao.id})
        self.assertIn("Maria Silva is not in the pilot allowlist", self.chatter(event))

    def test_partner_without_number(self):
        trap, event = self.enqueue(self.make_event, self.no_phone)
        trap.assert_jobs_count(0)
        self.assertIn("Sem Telefone has no mobile number", self.chatter(event))

    def test_unmapped_message_type_is_reported(self):
        self.env["wac.template.mapping"].search([
            ("company_id", "=", self.company_a.id), ("message_type", "=", "reminder")]).unlink()
        trap, event = self.enqueue(self.make_event, self.maria)
        self.assertEqual({key[1] for key in self.job_calls(trap)}, {"confirmation"})
        self.assertIn("No approved template is mapped for the reminder", self.chatter(event))

    def test_enqueue_is_idempotent_with_stored_jobs(self):
        """Without trap: the same (event, type, attendee, start) is one queue job."""
        event = self.make_event(self.maria)
        Job = self.env["queue.job"]
        key = send_key(event.id, "reminder", self.maria.id, START)
        self.assertEqual(Job.search_count([("identity_key", "=", key)]), 1)
        self.env["wac.send"]._wac_events_created(event)  # e.g. a second trigger
        self.assertEqual(Job.search_count([("identity_key", "=", key)]), 1)
        event.write({"name": "Limpeza e avaliação"})
        self.assertEqual(Job.search_count([("identity_key", "like", "wac:%d:" % event.id)]), 2)

    # ------------------------------------------------------------
    # Changes after the reminder was enqueued
    # ------------------------------------------------------------

    def test_reschedule_moves_the_reminder(self):
        event = self.make_event(self.maria)
        Job = self.env["queue.job"]
        old_reminder = Job.search([("identity_key", "=", send_key(
            event.id, "reminder", self.maria.id, START))])
        self.assertEqual(old_reminder.state, "pending")
        # Maria was told about it.
        self.send(event, "confirmation", self.maria)
        new_start = FUTURE_START + timedelta(days=1)
        trap, _result = self.enqueue(event.write, {
            "start": new_start, "stop": new_start + timedelta(minutes=45)})
        self.assertEqual(old_reminder.state, "cancelled", "the pending reminder is dropped")
        calls = self.job_calls(trap)
        new = start_key(new_start)
        self.assertEqual(set(calls), {(event.id, "reschedule", self.maria.id, new),
                                      (event.id, "reminder", self.maria.id, new)})
        self.assertEqual(calls[(event.id, "reminder", self.maria.id, new)]["eta"],
                         new_start - timedelta(hours=24))

    def test_move_before_anything_was_sent_confirms_the_new_time(self):
        _trap, event = self.enqueue(self.make_event, self.maria)
        new_start = FUTURE_START + timedelta(hours=2)
        trap2, _r = self.enqueue(event.write, {"start": new_start,
                                               "stop": new_start + timedelta(hours=1)})
        kinds = {key[1] for key in self.job_calls(trap2)}
        self.assertEqual(kinds, {"confirmation", "reminder"},
                         "no 'rescheduled' for an appointment the customer never heard of")
        # The old jobs, if they still run, see that the time changed.
        self.assertIn("skipped", self.send(event, "confirmation", self.maria, start=START))
        self.assertFalse(self.sent_messages())

    def test_archive_cancels_pending_reminders_and_enqueues_cancellation(self):
        event = self.make_event(self.maria)
        reminder = self.env["queue.job"].search([("identity_key", "=", send_key(
            event.id, "reminder", self.maria.id, START))])
        trap, _r = self.enqueue(event.action_archive)
        self.assertEqual(reminder.state, "cancelled")
        self.assertEqual(set(self.job_calls(trap)),
                         {(event.id, "cancellation", self.maria.id, START)})

    def test_unlink_enqueues_cancellation_with_a_snapshot(self):
        trap, event = self.enqueue(self.make_event, self.maria)
        event_id = event.id
        trap, _r = self.enqueue(event.unlink)
        (call,) = [c for c in trap.calls if c.args[2] == "cancellation"]
        snapshot = call.args[5]
        self.assertEqual(snapshot["id"], event_id)
        self.assertEqual(snapshot["name"], "Limpeza")
        self.assertEqual(snapshot["start"], fields.Datetime.to_string(FUTURE_START))

    def test_attendees_added_and_removed(self):
        event = self.make_event(self.maria)
        trap, _r = self.enqueue(event.write, {"partner_ids": [(4, self.joao.id),
                                                              (3, self.maria.id)]})
        calls = set(self.job_calls(trap))
        self.assertIn((event.id, "confirmation", self.joao.id, START), calls)
        self.assertIn((event.id, "reminder", self.joao.id, START), calls)
        self.assertIn((event.id, "cancellation", self.maria.id, START), calls)
        dropped = self.env["queue.job"].search([("identity_key", "=", send_key(
            event.id, "reminder", self.maria.id, START))])
        self.assertEqual(dropped.state, "cancelled")

    def test_unrelated_write_enqueues_nothing(self):
        event = self.make_event(self.maria)
        trap, _r = self.enqueue(event.write, {"description": "Trazer exames"})
        trap.assert_jobs_count(0)

    def test_occurrences_of_a_recurrence_get_reminders_only(self):
        trap, _event = self.enqueue(self.make_event, self.maria, recurrency=True,
                                   rrule_type="weekly", count=3, tue=True)
        kinds = sorted(key[1] for key in self.job_calls(trap))
        self.assertEqual(kinds.count("confirmation"), 1)
        self.assertEqual(kinds.count("reminder"), 3)
