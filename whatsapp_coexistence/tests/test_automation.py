"""Triggers: which jobs an appointment change enqueues (trap_jobs), and why nothing is."""

from datetime import datetime, timedelta

from odoo import fields
from odoo.tests import tagged

from odoo.addons.queue_job.tests.common import trap_jobs

from ..const import CHANNEL_WHATSAPP, PARAM_KILL_SWITCH
from ..models.wac_send_planner import PLAN_IN_JOB_MIN
from ..tools.wa_cloud.send_key import send_key, start_key
from .common_automation import FUTURE_START, WacAutomationCase, near_start

START = start_key(FUTURE_START)
DAY = timedelta(hours=24)


@tagged("post_install", "-at_install")
class TestAutomationTriggers(WacAutomationCase):
    def test_create_enqueues_confirmation_now_and_the_reminder_when_near(self):
        trap, event = self.enqueue(self.make_event, self.maria | self.joao)
        calls = self.job_calls(trap)
        self.assertEqual(set(calls), {(event.id, "confirmation", partner.id, START)
                                      for partner in (self.maria, self.joao)},
                         "the organizer (an internal user) gets nothing")
        confirmation = calls[(event.id, "confirmation", self.maria.id, START)]
        self.assertEqual(confirmation["identity_key"],
                         send_key(event.id, "confirmation", self.maria.id, START))
        self.assertEqual(confirmation["channel"], CHANNEL_WHATSAPP)
        self.assertIsNone(confirmation["eta"])
        self.assertIn("planned for 2 attendee(s)", event.wa_automation_note)
        self.assertIn("Reminder on 2/1/27, 2:30", event.wa_automation_note)
        self.assertFalse(event.wa_reminder_start, "the planner still has to enqueue it")
        # The hourly planner, an hour before the reminder is due, enqueues it.
        trap = self.plan_reminders(FUTURE_START - DAY - timedelta(hours=1))
        calls = self.job_calls(trap)
        self.assertEqual(set(calls), {(event.id, "reminder", partner.id, START)
                                      for partner in (self.maria, self.joao)})
        reminder = calls[(event.id, "reminder", self.maria.id, START)]
        self.assertEqual(reminder["eta"], FUTURE_START - DAY)
        self.assertEqual(reminder["identity_key"],
                         send_key(event.id, "reminder", self.maria.id, START))
        self.assertEqual(event.wa_reminder_start, FUTURE_START)
        # Planned once: the next runs leave it alone.
        trap = self.plan_reminders(FUTURE_START - DAY - timedelta(minutes=30))
        trap.assert_jobs_count(0)

    def test_near_appointment_gets_its_reminder_at_once(self):
        start = near_start(25)
        trap, event = self.enqueue(self.make_event, self.maria, start=start)
        calls = self.job_calls(trap)
        self.assertEqual({key[1] for key in calls}, {"confirmation", "reminder"})
        self.assertEqual(calls[(event.id, "reminder", self.maria.id, start_key(start))]["eta"],
                         start - DAY)
        self.assertEqual(event.wa_reminder_start, start)
        self.plan_reminders(fields.Datetime.now()).assert_jobs_count(0)

    def test_late_planner_sends_the_reminder_at_once(self):
        trap, _event = self.enqueue(self.make_event, self.maria)
        trap = self.plan_reminders(FUTURE_START - timedelta(hours=20))
        (call,) = trap.calls
        self.assertEqual(call.args[2], "reminder")
        self.assertIsNone(call.properties["eta"], "4 hours late, the appointment in 20")
        trap = self.plan_reminders(FUTURE_START - timedelta(minutes=30))
        trap.assert_jobs_count(0)

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
        self.assertEqual(len(trap.calls), 2)

    def test_a_large_batch_is_planned_by_a_job(self):
        Event = self.env["calendar.event"].with_company(self.company_a)
        vals = [{"name": "Consulta %d" % i, "start": FUTURE_START + timedelta(hours=i),
                 "stop": FUTURE_START + timedelta(hours=i, minutes=30),
                 "partner_ids": [(6, 0, (self.maria | self.joao).ids)],
                 "wa_company_id": self.company_a.id} for i in range(PLAN_IN_JOB_MIN)]
        trap, events = self.enqueue(Event.create, vals)
        (plan,) = trap.calls
        self.assertEqual(plan.method.__name__, "_wac_job_plan")
        self.assertEqual(plan.args[0], self.company_a.id)
        self.assertEqual(len(plan.args[1]), PLAN_IN_JOB_MIN)
        self.assertEqual(set(events.mapped("wa_automation_note")),
                         {"WhatsApp messages are being planned."})
        # Meanwhile one appointment is deleted, one cancelled (archived), one moved.
        deleted, archived, moved = events[:3]
        moved_to = FUTURE_START + timedelta(days=3)
        with trap_jobs():
            deleted.unlink()
            archived.active = False
            moved.start = moved_to
        (job,) = trap.enqueued_jobs
        job.perform()  # not trapped: the send jobs are stored, as the runner would store them
        live = events[1:] - archived
        Job = self.env["queue.job"].sudo()
        domain = [("method_name", "=", "_wac_job_send"),
                  ("identity_key", "in", [send_key(event.id, "confirmation", partner.id,
                                                   start_key(start))
                                          for event in events[1:]
                                          for partner in (self.maria, self.joao)
                                          for start in (event.start, FUTURE_START)])]
        self.assertEqual(set(Job.search(domain).mapped("identity_key")), {
            send_key(event.id, "confirmation", partner.id, start_key(event.start))
            for event in live for partner in (self.maria, self.joao)})
        self.assertIn(send_key(moved.id, "confirmation", self.maria.id, start_key(moved_to)),
                      Job.search(domain).mapped("identity_key"), "planned as it is now")
        self.assertTrue(all("planned for 2 attendee(s)" in note
                            for note in live.mapped("wa_automation_note")))
        self.assertEqual(archived.wa_automation_note,
                         "WhatsApp cancellation planned for 2 attendee(s).",
                         "the cancellation hook, not the plan, speaks for it")
        # The runner retrying the job enqueues nothing twice (identity keys).
        count = Job.search_count(domain)
        job.perform()
        self.assertEqual(Job.search_count(domain), count)

    def test_reminder_waits_for_the_end_of_quiet_hours(self):
        self.account_a.write({"quiet_hours_start": 21, "quiet_hours_end": 8})
        start = datetime(2027, 2, 2, 10, 0)  # 07:00 in São Paulo: the reminder would be 07:00
        _trap, event = self.enqueue(self.make_event, self.maria, start=start)
        trap = self.plan_reminders(datetime(2027, 2, 1, 9, 0))
        eta = self.job_calls(trap)[(event.id, "reminder", self.maria.id, start_key(start))]["eta"]
        self.assertEqual(eta, datetime(2027, 2, 1, 11, 0), "08:00 local, the end of quiet hours")

    def test_reminder_offset_is_per_company(self):
        self.account_a.reminder_offset_hours = 2
        start = near_start(4)
        trap, event = self.enqueue(self.make_event, self.maria, start=start)
        eta = self.job_calls(trap)[(event.id, "reminder", self.maria.id, start_key(start))]["eta"]
        self.assertEqual(eta, start - timedelta(hours=2))

    def test_no_reminder_when_closer_than_the_offset(self):
        trap, event = self.enqueue(self.make_event, self.maria, start=near_start(5))
        kinds = {key[1] for key in self.job_calls(trap)}
        self.assertEqual(kinds, {"confirmation"})
        self.assertIn("less than 24", self.chatter(event))
        self.plan_reminders(fields.Datetime.now()).assert_jobs_count(0)

    def test_disabled_mode_enqueues_nothing_and_says_so(self):
        self.account_a.automation_mode = "disabled"
        trap, event = self.enqueue(self.make_event, self.maria)
        trap.assert_jobs_count(0)
        self.assertEqual(event.wa_automation_note,
                         "WhatsApp automation is disabled for Clínica A.")
        self.plan_reminders(FUTURE_START - DAY).assert_jobs_count(0)

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

    def test_kill_switch_still_plans(self):
        # The switch holds, it does not lose: jobs are planned and hold their messages when
        # they run (test_hold covers the holding and the release).
        self.env["ir.config_parameter"].set_param(PARAM_KILL_SWITCH, True)
        trap, event = self.enqueue(self.make_event, self.maria)
        trap.assert_jobs_count(1)
        self.assertIn("kill switch", event.wa_automation_note)
        self.plan_reminders(FUTURE_START - DAY).assert_jobs_count(1)

    def test_paused_company_holds_other_company_sends(self):
        self.account_a._wac_pause("token revoked")
        trap, event_a = self.enqueue(self.make_event, self.maria)
        trap.assert_jobs_count(1)
        self.assertIn("paused: token revoked", event_a.wa_automation_note)
        trap, _event_b = self.enqueue(self.make_event, self.joao, company=self.company_b,
                                      user=self.env.user)
        trap.assert_jobs_count(1)

    def test_opted_out_partner_gets_nothing_and_the_chatter_says_why(self):
        contacts = self.env["wac.contact"]._wac_resolve(self.account_a, [("5511991234567",
                                                                         None, "Maria")])
        contacts["5511991234567"]._wac_set_opt_out(True, "keyword SAIR")
        trap, event = self.enqueue(self.make_event, self.maria | self.joao,
                                   start=near_start(25))
        partners = {key[2] for key in self.job_calls(trap)}
        self.assertEqual(partners, {self.joao.id}, "neither confirmation nor reminder")
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

    def test_planner_and_job_refuse_a_recipient_in_the_same_words(self):
        """One recipient check: what the planner wrote on the appointment is what the job
        says when the customer opted out, or left the pilot list, after the planning."""
        event = self.make_event(self.maria)
        contacts = self.env["wac.contact"]._wac_resolve(self.account_a, [("5511991234567",
                                                                         None, "Maria")])
        contacts["5511991234567"]._wac_set_opt_out(True, "keyword SAIR")
        job_reason = self.send(event, "confirmation", self.maria).removeprefix("skipped: ")
        _trap, other = self.enqueue(self.make_event, self.maria)
        self.assertIn("<li>%s</li>" % job_reason, self.chatter(other))
        contacts["5511991234567"]._wac_set_opt_out(False, "keyword VOLTAR")
        self.account_a.pilot_allowlist = "+55 11 98765-1234"
        job_reason = self.send(event, "confirmation", self.maria).removeprefix("skipped: ")
        _trap, other = self.enqueue(self.make_event, self.maria)
        self.assertIn("<li>%s</li>" % job_reason, self.chatter(other))

    def test_partner_without_number(self):
        trap, event = self.enqueue(self.make_event, self.no_phone)
        trap.assert_jobs_count(0)
        self.assertIn("Sem Telefone has no mobile number", self.chatter(event))

    def test_unmapped_message_type_is_reported(self):
        self.env["wac.template.mapping"].search([
            ("company_id", "=", self.company_a.id), ("message_type", "=", "reminder")]).unlink()
        trap, event = self.enqueue(self.make_event, self.maria, start=near_start(25))
        self.assertEqual({key[1] for key in self.job_calls(trap)}, {"confirmation"})
        self.assertIn("No approved template is mapped for the reminder", self.chatter(event))
        self.plan_reminders(fields.Datetime.now()).assert_jobs_count(0)

    def test_enqueue_is_idempotent_with_stored_jobs(self):
        """Without trap: the same (event, type, attendee, start) is one queue job."""
        start = near_start(25)
        event = self.make_event(self.maria, start=start)
        Job = self.env["queue.job"]
        key = send_key(event.id, "reminder", self.maria.id, start_key(start))
        job = Job.search([("identity_key", "=", key)])
        self.assertEqual(len(job), 1)
        self.assertEqual((job.channel, job.eta, job.method_name),
                         (CHANNEL_WHATSAPP, start - DAY, "_wac_job_send"))
        self.env["wac.send.planner"]._wac_events_created(event)  # e.g. a second trigger
        self.assertEqual(Job.search_count([("identity_key", "=", key)]), 1)
        event.write({"name": "Limpeza e avaliação"})
        self.assertEqual(Job.search_count([("identity_key", "like", "wac:%d:" % event.id)]), 2)

    # ------------------------------------------------------------
    # Changes after the reminder was enqueued
    # ------------------------------------------------------------

    def test_reschedule_moves_the_reminder(self):
        start = near_start(26)
        event = self.make_event(self.maria, start=start)
        old_reminder = self.env["queue.job"].search([("identity_key", "=", send_key(
            event.id, "reminder", self.maria.id, start_key(start)))])
        self.assertEqual(old_reminder.state, "pending")
        self.send(event, "confirmation", self.maria)  # Maria was told about it
        new_start = start + timedelta(hours=1)
        trap, _result = self.enqueue(event.write, {
            "start": new_start, "stop": new_start + timedelta(minutes=45)})
        self.assertEqual(old_reminder.state, "cancelled", "the pending reminder is dropped")
        calls = self.job_calls(trap)
        new = start_key(new_start)
        self.assertEqual(set(calls), {(event.id, "reschedule", self.maria.id, new),
                                      (event.id, "reminder", self.maria.id, new)})
        self.assertEqual(calls[(event.id, "reminder", self.maria.id, new)]["eta"],
                         new_start - DAY)
        # Far away now: the planner takes the reminder over.
        far = FUTURE_START
        trap, _result = self.enqueue(event.write, {"start": far,
                                                   "stop": far + timedelta(hours=1)})
        self.assertEqual({key[1] for key in self.job_calls(trap)}, {"reschedule"})
        self.assertFalse(event.wa_reminder_start)
        trap = self.plan_reminders(far - DAY - timedelta(hours=1))
        self.assertEqual({key[1] for key in self.job_calls(trap)}, {"reminder"})

    def test_move_before_anything_was_sent_confirms_the_new_time(self):
        _trap, event = self.enqueue(self.make_event, self.maria)
        new_start = FUTURE_START + timedelta(hours=2)
        trap2, _r = self.enqueue(event.write, {"start": new_start,
                                               "stop": new_start + timedelta(hours=1)})
        kinds = {key[1] for key in self.job_calls(trap2)}
        self.assertEqual(kinds, {"confirmation"},
                         "no 'rescheduled' for an appointment the customer never heard of")
        # The old jobs, if they still run, see that the time changed.
        self.assertIn("skipped", self.send(event, "confirmation", self.maria, start=START))
        self.assertFalse(self.sent_messages())

    def test_archive_cancels_pending_reminders_and_enqueues_cancellation(self):
        start = near_start(25)
        event = self.make_event(self.maria, start=start)
        reminder = self.env["queue.job"].search([("identity_key", "=", send_key(
            event.id, "reminder", self.maria.id, start_key(start)))])
        trap, _r = self.enqueue(event.action_archive)
        self.assertEqual(reminder.state, "cancelled")
        self.assertEqual(set(self.job_calls(trap)),
                         {(event.id, "cancellation", self.maria.id, start_key(start))})
        self.plan_reminders(fields.Datetime.now()).assert_jobs_count(0)

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
        start = near_start(25)
        event = self.make_event(self.maria, start=start)
        trap, _r = self.enqueue(event.write, {"partner_ids": [(4, self.joao.id),
                                                              (3, self.maria.id)]})
        key = start_key(start)
        self.assertEqual(set(self.job_calls(trap)), {
            (event.id, "confirmation", self.joao.id, key),
            (event.id, "reminder", self.joao.id, key),
            (event.id, "cancellation", self.maria.id, key)})
        dropped = self.env["queue.job"].search([("identity_key", "=", send_key(
            event.id, "reminder", self.maria.id, key))])
        self.assertEqual(dropped.state, "cancelled")

    def test_attendee_added_to_a_far_appointment_gets_the_planned_reminder(self):
        _trap, event = self.enqueue(self.make_event, self.maria)
        self.plan_reminders(FUTURE_START - DAY - timedelta(hours=4))  # nothing due yet
        self.enqueue(event.write, {"partner_ids": [(4, self.joao.id)]})
        trap = self.plan_reminders(FUTURE_START - DAY - timedelta(hours=1))
        self.assertEqual({key[2] for key in self.job_calls(trap)},
                         {self.maria.id, self.joao.id})

    def test_unrelated_write_enqueues_nothing(self):
        event = self.make_event(self.maria)
        trap, _r = self.enqueue(event.write, {"description": "Trazer exames"})
        trap.assert_jobs_count(0)

    def test_occurrences_of_a_recurrence_get_reminders_only(self):
        start = near_start(25)
        trap, event = self.enqueue(self.make_event, self.maria, start=start, recurrency=True,
                                   rrule_type="daily", count=3)
        kinds = sorted(key[1] for key in self.job_calls(trap))
        self.assertEqual(kinds, ["confirmation", "reminder"],
                         "one confirmation; the first reminder is due soon")
        occurrences = event.recurrence_id.calendar_event_ids.sorted("start")
        self.assertEqual(len(occurrences), 3)
        trap = self.plan_reminders(occurrences[1].start - DAY - timedelta(hours=1))
        self.assertEqual({(key[0], key[1]) for key in self.job_calls(trap)},
                         {(occurrences[1].id, "reminder")})
