"""The send job against the fake Graph server: payloads, exactly-once, every error class."""

import json
import re
from datetime import timedelta

from odoo import fields
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.tests.common import trap_jobs

from ..const import PARAM_KILL_SWITCH, PARAM_PREFIX
from ..models.wac_send import JOB_MAX_RETRIES
from ..tools.wa_cloud.send_key import start_key
from .common import CLINIC, SALON
from .common_automation import FUTURE_START, WacAutomationCase

QUIET = "odoo.addons.whatsapp_coexistence.models.wac_send"


@tagged("post_install", "-at_install")
class TestSend(WacAutomationCase):
    def setUp(self):
        super().setUp()
        self.event = self.make_event(self.maria)
        self.fake.clear_requests()
        self.env["ir.config_parameter"].set_param(PARAM_PREFIX + "graph_timeout", 2)

    def assert_nothing_sent(self):
        self.assertEqual(self.graph_requests(path_contains="/messages"), [])

    # ------------------------------------------------------------
    # Success and payloads
    # ------------------------------------------------------------

    def test_confirmation_positional_template_payload(self):
        result = self.send(self.event, "confirmation", self.maria)
        self.assertTrue(result.startswith("sent wamid."), result)
        (request,) = self.graph_requests(path_contains="/messages")
        key = "wac:%d:confirmation:%d:%s" % (self.event.id, self.maria.id,
                                             start_key(FUTURE_START))
        self.assertEqual(request["json"], {
            "messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "5511991234567", "type": "template", "biz_opaque_callback_data": key,
            "template": {
                "name": "appointment_confirmation",
                "language": {"policy": "deterministic", "code": "pt_BR"},
                "components": [
                    {"type": "body", "parameters": [
                        {"type": "text", "text": "Maria"},
                        {"type": "text", "text": "terça-feira, 2 de fevereiro de 2027"},
                        {"type": "text", "text": "14:30"}]},
                    {"type": "button", "sub_type": "quick_reply", "index": "0",
                     "parameters": [{"type": "payload",
                                     "payload": "CONFIRM:%d" % self.event.id}]},
                    {"type": "button", "sub_type": "quick_reply", "index": "1",
                     "parameters": [{"type": "payload",
                                     "payload": "CANCEL:%d" % self.event.id}]},
                ]}})
        message = self.message_of(self.event, "confirmation", self.maria)
        self.assertRecordValues(message, [{
            "direction": "out", "source": "api", "status": "accepted",
            "recipient_input": "5511991234567", "recipient_wa_id": "551191234567",
            "biz_opaque_callback_data": key, "wa_send_key": key, "wa_attempt_open": False,
            "res_model": "calendar.event", "res_id": self.event.id,
        }])
        self.assertEqual(message.wamid, request and self.fake.messages()[0]["wamid"])
        self.assertEqual(json.loads(message.payload), request["json"])
        self.assertEqual(message.body, "Olá Maria, sua consulta em terça-feira, 2 de fevereiro "
                         "de 2027 às 14:30 está confirmada.")
        self.assertEqual(message.contact_id.phone_key, "5511991234567")
        self.assertIn("WhatsApp confirmation sent to Maria Silva", self.chatter(self.event))
        log = self.event.message_ids.filtered(lambda m: "confirmation sent" in (m.body or ""))
        self.assertEqual(log.author_id, self.env.ref("base.partner_root"))

    def test_first_send_makes_the_attendee_the_contact(self):
        """Another partner has the same number, one of the company's own, which a search by
        number prefers: the contact of the first message is the attendee it was written to."""
        self.env["res.partner"].create({"name": "Maria S. (duplicate)",
                                        "mobile": self.maria.mobile,
                                        "company_id": self.company_a.id})
        self.assertFalse(self.env["wac.contact"].search([("partner_id", "=", self.maria.id)]))
        self.env.flush_all()  # the send's own transaction reads the database
        self.send(self.event, "confirmation", self.maria)
        message = self.message_of(self.event, "confirmation", self.maria)
        self.assertEqual(message.contact_id.partner_id, self.maria)
        self.assertEqual(message.partner_id, self.maria)

    def test_statuses_follow_the_sent_message(self):
        self.send(self.event, "confirmation", self.maria)
        message = self.message_of(self.event, "confirmation", self.maria)
        self.deliver_statuses(self.account_a, message.wamid, "sent", "delivered", "read")
        self.assertEqual(message.status, "read")
        self.assertEqual(message.status_ids.mapped("status"), ["sent", "delivered", "read"])

    def test_named_library_template_and_sanitised_location(self):
        self.send(self.event, "confirmation", self.maria)  # a reschedule follows something
        self.send(self.event, "reschedule", self.maria)  # mapped to the library template
        (_confirmation, request) = self.graph_requests(path_contains="/messages")
        template = request["json"]["template"]
        self.assertEqual(template["name"], "odoo_appointment_reschedule")
        self.assertEqual(template["components"][0], {"type": "body", "parameters": [
            {"type": "text", "parameter_name": "customer_name", "text": "Maria"},
            {"type": "text", "parameter_name": "company_name", "text": "Clínica A"},
            {"type": "text", "parameter_name": "appointment_date",
             "text": "terça-feira, 2 de fevereiro de 2027"},
            {"type": "text", "parameter_name": "appointment_time", "text": "14:30"},
            {"type": "text", "parameter_name": "location", "text": "Sala 3, Rua das Flores, 123"},
        ]})

    def test_english_attendee_gets_the_english_template(self):
        event = self.make_event(self.mary)
        self.send(event, "confirmation", self.mary)
        (request,) = self.graph_requests(path_contains="/messages")
        template = request["json"]["template"]
        self.assertEqual((template["name"], template["language"]["code"]),
                         ("odoo_appointment_confirmation", "en_US"))
        params = {p["parameter_name"]: p["text"] for p in template["components"][0]["parameters"]}
        self.assertEqual(params["appointment_date"], "Tuesday, February 2, 2027")
        self.assertEqual(params["appointment_time"].replace("\u202f", " "), "2:30 PM")

    def test_dry_run_stores_the_exact_payload_without_calling_meta(self):
        self.account_a.automation_mode = "dry_run"
        self.assertEqual(self.send(self.event, "confirmation", self.maria), "dry run")
        self.assert_nothing_sent()
        message = self.message_of(self.event, "confirmation", self.maria)
        self.assertEqual(message.status, "dry_run")
        self.assertFalse(message.wamid)
        payload = json.loads(message.payload)
        self.assertEqual((payload["to"], payload["template"]["name"]),
                         ("5511991234567", "appointment_confirmation"))
        self.assertEqual(payload["biz_opaque_callback_data"], message.wa_send_key)
        self.assertIn("dry run, not sent", self.chatter(self.event))
        self.assertEqual(self.send(self.event, "confirmation", self.maria),
                         "already done as a dry run")

    def test_dry_run_payload_equals_enabled_payload(self):
        self.account_a.automation_mode = "dry_run"
        self.send(self.event, "confirmation", self.maria)
        dry_payload = json.loads(self.message_of(self.event, "confirmation", self.maria).payload)
        other = self.make_event(self.maria)
        self.go_live(self.account_a)
        self.send(other, "confirmation", self.maria)
        (request,) = self.graph_requests(path_contains="/messages")
        sent = request["json"]
        # Only the appointment's id differs (send key and button payloads).
        # The id is replaced where it follows a word and a colon ("wac:17:", "CONFIRM:17"):
        # a bare replace also hit the start time's digits when an id was, say, 17 and the
        # time 173000, and one after any colon the time "14:30" when the id was 30.
        def normalise(payload, event_id):
            return re.sub(r"(?<=[A-Za-z]):%d(?=[:\"])" % event_id, ":ID", json.dumps(payload))

        self.assertEqual(normalise(dry_payload, self.event.id), normalise(sent, other.id))

    def test_never_twice(self):
        self.send(self.event, "confirmation", self.maria)
        self.assertIn("already sent", self.send(self.event, "confirmation", self.maria))
        self.assertEqual(len(self.fake.messages()), 1)

    # ------------------------------------------------------------
    # Relevance at send time
    # ------------------------------------------------------------

    def test_kill_switch_at_send_time(self):
        self.env["ir.config_parameter"].set_param(PARAM_KILL_SWITCH, True)
        self.assertIn("kill switch", self.send(self.event, "confirmation", self.maria))
        self.assert_nothing_sent()
        self.assertEqual(self.message_of(self.event, "confirmation", self.maria).status, "held")

    def test_mode_disabled_at_send_time(self):
        self.account_a.automation_mode = "disabled"
        self.assertIn("skipped", self.send(self.event, "reminder", self.maria))
        self.assert_nothing_sent()

    def test_opt_out_after_enqueue(self):
        contacts = self.env["wac.contact"]._wac_resolve(self.account_a,
                                                        [("551191234567", None, None)])
        contacts["551191234567"]._wac_set_opt_out(True, "keyword PARAR")
        self.assertIn("opted out", self.send(self.event, "reminder", self.maria))
        self.assert_nothing_sent()
        self.assertIn("opted out", self.chatter(self.event))

    def test_allowlist_after_enqueue(self):
        self.account_a.pilot_allowlist = "+55 11 98765-1234"
        self.assertIn("allowlist", self.send(self.event, "reminder", self.maria))
        self.assert_nothing_sent()

    def test_reschedule_after_the_reminder_was_enqueued(self):
        old = start_key(self.event.start)
        new_start = FUTURE_START + timedelta(days=2)
        self.event.write({"start": new_start, "stop": new_start + timedelta(hours=1)})
        self.assertIn("time changed", self.send(self.event, "reminder", self.maria, start=old))
        self.assert_nothing_sent()
        self.assertTrue(self.send(self.event, "reminder", self.maria).startswith("sent"))

    def test_cancel_after_the_reminder_was_enqueued(self):
        self.send(self.event, "confirmation", self.maria)
        self.event.action_archive()
        self.assertIn("cancelled", self.send(self.event, "reminder", self.maria))
        self.assertTrue(self.send(self.event, "cancellation", self.maria).startswith("sent"))
        names = [m["payload"]["template"]["name"] for m in self.fake.messages()]
        self.assertEqual(names, ["appointment_confirmation", "odoo_appointment_cancellation"])

    def test_no_cancellation_for_an_appointment_never_announced(self):
        self.event.action_archive()
        self.assertIn("Nothing was sent", self.send(self.event, "cancellation", self.maria))
        self.assert_nothing_sent()

    def test_deleted_event_cancellation_uses_the_snapshot(self):
        self.send(self.event, "confirmation", self.maria)
        snapshot = self.event._wac_data()
        event_id, start = self.event.id, start_key(self.event.start)
        self.event.unlink()
        result = self.env["wac.send"]._wac_job_send(
            self.company_a.id, event_id, "cancellation", self.maria.id, start, snapshot)
        self.assertTrue(result.startswith("sent"), result)
        params = self.fake.messages()[-1]["payload"]["template"]["components"][0]["parameters"]
        self.assertIn("terça-feira, 2 de fevereiro de 2027", [p["text"] for p in params])

    def test_declined_attendee_gets_no_reminder(self):
        self.event.attendee_ids.filtered(lambda a: a.partner_id == self.maria).do_decline()
        self.assertIn("declined", self.send(self.event, "reminder", self.maria))
        self.assert_nothing_sent()

    def test_hello_world_only_for_pilot_numbers(self):
        hello = self._template(self.account_a, "hello_world", "en_US")
        self.map_confirmation.unlink()
        self.env["wac.template.mapping"].search([
            ("company_id", "=", self.company_a.id),
            ("message_type", "=", "confirmation")]).unlink()
        self.account_a.automation_mode = "dry_run"
        self.env["wac.template.mapping"].create({
            "company_id": self.company_a.id, "message_type": "confirmation",
            "template_id": hello.id})
        self.assertEqual(self.send(self.event, "confirmation", self.maria), "dry run")
        self.go_live(self.account_a, pilot_allowlist="+55 11 99123-4567")
        other = self.make_event(self.maria)
        self.assertTrue(self.send(other, "confirmation", self.maria).startswith("sent"))
        # Without allowlist the guard holds at send time too (the setting is checked at
        # save, this covers a mapping that predates it).
        self.env.flush_all()
        self.env.cr.execute("UPDATE wac_account SET pilot_allowlist = NULL WHERE id = %s",
                            (self.account_a.id,))
        self.account_a.invalidate_recordset(["pilot_allowlist"])
        third = self.make_event(self.maria)
        result = self.send(third, "confirmation", self.maria)
        self.assertIn("hello_world", result)
        self.assertEqual(len(self.fake.messages()), 1)

    # ------------------------------------------------------------
    # Limits
    # ------------------------------------------------------------

    def test_quiet_hours_postpone_reminders_only(self):
        local = fields.Datetime.context_timestamp(
            self.env["res.partner"].with_context(tz="America/Sao_Paulo"), fields.Datetime.now())
        self.account_a.write({"quiet_hours_start": local.hour,
                              "quiet_hours_end": (local.hour + 2) % 24})
        caught = self.send_postponed(self.event, "reminder", self.maria)
        self.assertTrue(caught.ignore_retry)
        self.assertTrue(3600 <= caught.seconds <= 7200, caught.seconds)
        self.assert_nothing_sent()
        self.assertTrue(self.send(self.event, "confirmation", self.maria).startswith("sent"))

    def test_pair_spacing_postpones_the_second_message(self):
        self.account_a.recipient_spacing_s = 6
        self.send(self.event, "confirmation", self.maria)
        caught = self.send_postponed(self.event, "reminder", self.maria)
        self.assertTrue(caught.ignore_retry)
        self.assertTrue(4 <= caught.seconds <= 6)
        self.assertEqual(len(self.fake.messages()), 1)
        other = self.make_event(self.joao)
        self.assertTrue(self.send(other, "confirmation", self.joao).startswith("sent"),
                        "another recipient is not held back")

    def test_a_slot_not_free_at_once_is_waited_for_before_the_intent(self):
        """The intent is written, then the slot reserved; when the slot is not free at once
        (here the pair spacing), that intent is rolled back and written again after the
        wait: one row, one contact, one request to Meta, the spacing held."""
        self.account_a.recipient_spacing_s = 0.4
        self.send(self.event, "confirmation", self.maria)
        self.assertTrue(self.send(self.event, "reminder", self.maria).startswith("sent"))
        first, second = self.fake.messages()
        self.assertGreaterEqual(second["time"] - first["time"], 0.35)
        reminder = self.message_of(self.event, "reminder", self.maria)
        self.assertEqual((reminder.status, reminder.wa_attempt_open), ("accepted", False))
        self.assertEqual(self.env["wac.message"].search_count([
            ("wa_send_key", "=", reminder.wa_send_key)]), 1)
        self.assertEqual(self.env["wac.contact"].search_count([
            ("company_id", "=", self.company_a.id),
            ("phone_key", "=", reminder.contact_id.phone_key)]), 1)

    def test_daily_cap(self):
        self.account_a.recipient_daily_cap = 2
        self.send(self.event, "confirmation", self.maria)
        self.send(self.event, "reminder", self.maria)
        result = self.send(self.event, "reschedule", self.maria)
        self.assertIn("Daily cap reached", result)
        self.assertEqual(len(self.fake.messages()), 2)
        self.assertEqual(self.message_of(self.event, "reschedule", self.maria).status, "failed")

    # ------------------------------------------------------------
    # Errors by class (reference §4.2)
    # ------------------------------------------------------------

    def test_throughput_limit_retries_without_consuming_retries(self):
        self.fake.add_fault(code=130429, match={"path": "/messages"})
        caught = self.send_postponed(self.event, "confirmation", self.maria)
        self.assertTrue(caught.ignore_retry)
        message = self.message_of(self.event, "confirmation", self.maria)
        self.assertFalse(message.wa_attempt_open, "Meta answered: nothing was sent")
        self.assertEqual((message.status, message.error_code), ("pending", 130429))
        self.env.cr.execute("SELECT tat - EXTRACT(EPOCH FROM clock_timestamp()) FROM "
                            "wac_rate_bucket WHERE key = %s", ("company:%d" % self.company_a.id,))
        self.assertGreater(self.env.cr.fetchone()[0], 0.5, "every worker backs off")
        self.assertTrue(self.send(self.event, "confirmation", self.maria).startswith("sent"))
        self.assertEqual(len(self.fake.messages()), 1)

    def test_pair_rate_limit_131056(self):
        self.fake.add_fault(code=131056, match={"path": "/messages"})
        caught = self.send_postponed(self.event, "confirmation", self.maria)
        self.assertTrue(caught.ignore_retry)
        self.assertGreaterEqual(caught.seconds, 6)

    def test_permanent_error_fails_without_retry(self):
        self.fake.add_fault(code=131026, match={"path": "/messages"})
        result = self.send(self.event, "confirmation", self.maria)
        self.assertIn("131026", result)
        message = self.message_of(self.event, "confirmation", self.maria)
        self.assertRecordValues(message, [{"status": "failed", "error_code": 131026,
                                           "wa_attempt_open": False}])
        self.assertIn("refused by Meta", self.chatter(self.event))
        self.assertIn("failed earlier", self.send(self.event, "confirmation", self.maria))
        self.assertEqual(self.fake.messages(), [])

    def test_template_error_is_permanent(self):
        self.fake.add_fault(code=132001, match={"path": "/messages"})
        self.assertIn("132001", self.send(self.event, "confirmation", self.maria))
        self.assertEqual(self.message_of(self.event, "confirmation", self.maria).status,
                         "failed")

    def test_expired_token_pauses_only_that_company(self):
        event_b = self.make_event(self.joao, company=self.company_b, user=self.env.user)
        self.fake.add_fault(code=190, match={"path": CLINIC["phone_number_id"] + "/messages"})
        with mute_logger(QUIET):
            result = self.send(self.event, "confirmation", self.maria)
        self.assertIn("paused", result)
        self.assertRecordValues(self.account_a, [{"automation_paused": True,
                                                  "state": "needs_reauth"}])
        # Meta answered, so nothing went: the message waits for Resume with the others.
        message = self.message_of(self.event, "confirmation", self.maria)
        self.assertRecordValues(message, [{"status": "held", "error_code": 190}])
        self.assertIn("Meta blocks sending", message.wa_held_reason)
        self.assertTrue(self.account_a.activity_ids, "the managers are told")
        # Company A's other jobs stop (held); company B keeps sending.
        self.assertIn("held", self.send(self.event, "reminder", self.maria))
        self.assertTrue(self.send(event_b, "confirmation", self.joao).startswith("sent"))
        self.assertEqual(len(self.fake.messages(SALON["phone_number_id"])), 1)
        self.assertEqual(self.fake.messages(CLINIC["phone_number_id"]), [])

    def test_server_error_with_an_answer_is_retried_and_then_sent(self):
        self.fake.add_fault(status=500, match={"path": "/messages"})  # code 131000, JSON body
        caught = self.send_postponed(self.event, "confirmation", self.maria)
        self.assertFalse(caught.ignore_retry, "a real failure consumes a retry")
        message = self.message_of(self.event, "confirmation", self.maria)
        self.assertRecordValues(message, [{"wa_attempt_open": False, "wa_attempts": 1,
                                           "error_code": 131000}])
        self.assertTrue(self.send(self.event, "confirmation", self.maria).startswith("sent"))
        self.assertEqual(len(self.fake.messages()), 1)

    def test_repeated_server_errors_end_in_failure(self):
        self.fake.add_fault(code=131016, match={"path": "/messages"}, times=None)
        for _attempt in range(5):
            self.send_postponed(self.event, "confirmation", self.maria)
        with mute_logger(QUIET):
            result = self.send(self.event, "confirmation", self.maria)
        self.assertIn("failed", result)
        message = self.message_of(self.event, "confirmation", self.maria)
        self.assertRecordValues(message, [{"status": "failed", "wa_attempts": 6}])
        self.assertIn("kept refusing after 6 attempts", message.error_details)

    def test_dropped_connection_is_uncertain_never_resent_blindly(self):
        self.fake.add_fault(drop=True, match={"path": "/messages"})
        caught = self.send_postponed(self.event, "confirmation", self.maria)
        self.assertTrue(caught.ignore_retry)
        message = self.message_of(self.event, "confirmation", self.maria)
        self.assertTrue(message.wa_attempt_open)
        self.assertTrue(message.payload)
        # Within the grace period: wait for a status webhook, send nothing.
        self.send_postponed(self.event, "confirmation", self.maria)
        # After it: a person decides.
        self.age_attempt(message, 3600)
        result = self.send(self.event, "confirmation", self.maria)
        self.assertEqual(result, "uncertain")
        self.assertRecordValues(message, [{"status": "failed", "wa_attempt_open": False}])
        self.assertIn("Meta may have sent it", message.error_title)
        notified = self.event.message_ids.filtered(lambda m: "Meta may have sent it" in m.body)
        self.assertEqual(notified.partner_ids, self.organizer_a.partner_id,
                         "the organizer is notified")
        self.assertEqual(self.fake.messages(), [], "the dropped request was never accepted")
        self.assertEqual(len(self.graph_requests(path_contains="/messages")), 1)
        # The person checked the phone: Retry sends it.
        self.assertTrue(message.wa_can_retry)
        with trap_jobs() as trap:
            message.action_wac_retry()
        trap.assert_jobs_count(1)
        trap.perform_enqueued_jobs()
        self.assertTrue(message.wamid)
        self.assertEqual(len(self.fake.messages()), 1)
        audit = self.env["wac.audit.log"].search([("action", "=", "retry")])
        self.assertEqual((audit.res_id, audit.company_id, audit.old_value),
                         (message.id, self.company_a, "failed"))

    def test_manual_retry_gets_every_attempt_again(self):
        """After six refusals a manager presses Retry: the job is built like every send job
        (the same retries) and Meta gets its six attempts again, not one."""
        self.fake.add_fault(code=131016, match={"path": "/messages"}, times=6)
        for _attempt in range(5):
            self.send_postponed(self.event, "confirmation", self.maria)
        with mute_logger(QUIET):
            self.assertIn("failed", self.send(self.event, "confirmation", self.maria))
        message = self.message_of(self.event, "confirmation", self.maria)
        self.assertEqual(message.wa_attempts, 6)
        self.fake.add_fault(code=131016, match={"path": "/messages"}, times=2)
        with trap_jobs() as trap:
            message.with_user(self.manager_a).action_wac_retry()
        (call,) = trap.calls
        self.assertEqual(call.properties["max_retries"], JOB_MAX_RETRIES)
        self.assertEqual(call.properties["identity_key"], message.wa_send_key)
        (job,) = trap.enqueued_jobs
        outcomes = []
        for _attempt in range(3):
            try:  # not assertRaises: its rollback would undo what the job committed
                outcomes.append(job.perform())
            except RetryableJobError as error:
                outcomes.append(error)
        self.assertEqual([type(outcome) for outcome in outcomes[:2]], [RetryableJobError] * 2)
        self.assertTrue(outcomes[2].startswith("sent"), outcomes[2])
        self.assertRecordValues(message, [{"status": "accepted", "wa_attempts": 2}])
        self.assertEqual(len(self.fake.messages()), 1)

    def test_timeout_is_retryable_and_uncertain(self):
        self.fake.add_fault(timeout=True, hang=4, match={"path": "/messages"})
        self.send_postponed(self.event, "confirmation", self.maria)
        self.assertTrue(self.message_of(self.event, "confirmation", self.maria).wa_attempt_open)

    def test_crash_window_answer_lost_after_meta_accepted(self):
        """``processed``: Meta accepted the message, then the answer was lost (as if the
        worker died before committing). The status webhook that follows proves it was sent:
        its wamid is adopted and nothing is sent again."""
        self.fake.add_fault(drop=True, processed=True, match={"path": "/messages"})
        self.send_postponed(self.event, "confirmation", self.maria)
        (accepted,) = self.fake.messages()
        message = self.message_of(self.event, "confirmation", self.maria)
        self.assertTrue(message.wa_attempt_open)
        self.assertFalse(message.wamid)
        self.assertEqual(accepted["biz_opaque_callback_data"], message.wa_send_key)
        self.deliver_statuses(self.account_a, accepted["wamid"], "sent")
        self.age_attempt(message, 3600)  # even late: the status decides, not the clock
        result = self.send(self.event, "confirmation", self.maria)
        self.assertIn("adopted", result)
        self.assertRecordValues(message, [{"wamid": accepted["wamid"], "status": "sent",
                                           "wa_attempt_open": False}])
        self.assertEqual(len(self.fake.messages()), 1, "never sent twice")
        self.assertEqual(len(self.graph_requests(path_contains="/messages")), 1)
        self.assertIn("not sent again", self.chatter(self.event))

    def test_latency_is_tolerated(self):
        self.fake.add_fault(latency=0.5, match={"path": "/messages"})
        self.assertTrue(self.send(self.event, "confirmation", self.maria).startswith("sent"))

    def test_failed_status_after_acceptance_shows_on_the_message(self):
        self.fake.configure(recipient_failures={"551191234567": 131026})
        self.send(self.event, "confirmation", self.maria)
        message = self.message_of(self.event, "confirmation", self.maria)
        self.deliver_statuses(self.account_a, message.wamid, "failed")
        self.assertRecordValues(message, [{"status": "failed", "error_code": 131026}])
        self.assertFalse(message.wa_can_retry, "Meta accepted it: no blind retry")

    def test_late_status_is_linked_by_the_sweeper(self):
        """A status ingested while the job was committing its wamid stays an orphan (each
        transaction saw the other's work as not done yet); the cron links it."""
        self.send(self.event, "confirmation", self.maria)
        message = self.message_of(self.event, "confirmation", self.maria)
        self.env["wac.message.status"].create({
            "company_id": self.company_a.id, "wamid": message.wamid, "status": "delivered",
            "status_at": fields.Datetime.now()})
        self.assertEqual(message.status, "accepted")
        self.assertEqual(self.env["wac.message"]._wac_cron_attach_late_statuses(), 1)
        self.assertEqual(message.status, "delivered")
        self.assertEqual(self.env["wac.message"]._wac_cron_attach_late_statuses(), 0)
