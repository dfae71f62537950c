"""Every appointment change settles with the customer (issue 9, defects 6 and 7).

A confirmation is in flight (its intent committed, Meta answering after 2 s), or its answer
was lost, when a receptionist cancels the appointment, moves it or removes the customer. The
customer must end with the one message that matches the appointment's final state, exactly
once: counted from what the fake Graph server accepted, by the send keys Meta echoes.

The jobs are stored queue jobs, run as the job runner runs them (``run_job``); the requests
go over HTTP to the fake Graph server; only the client's request seam is wrapped, to let the
receptionist and a free worker act while Meta holds the request.
"""

from datetime import timedelta

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from odoo.addons.queue_job.exception import RetryableJobError

from ..tools.wa_cloud.send_key import send_key, start_key
from .common_automation import FUTURE_START, WacAutomationCase

OLD = start_key(FUTURE_START)
MOVED_TO = FUTURE_START + timedelta(days=1)
NEW = start_key(MOVED_TO)


@tagged("post_install", "-at_install")
class TestSettleWithTheCustomer(WacAutomationCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # What docs/automation.md says a receptionist needs: no WhatsApp group at all.
        cls.receptionist = new_test_user(
            cls.env, "wac_reception", groups="base.group_user,base.group_partner_manager",
            company_id=cls.company_a.id, company_ids=cls.company_a.ids)

    def setUp(self):
        super().setUp()
        self.event = self.make_event(self.maria)  # its confirmation job is stored, pending
        self.confirmation = self.send_jobs(self.event)
        self.assertEqual(self.confirmation.identity_key,
                         send_key(self.event.id, "confirmation", self.maria.id, OLD))

    # ------------------------------------------------------------
    # What the receptionist does
    # ------------------------------------------------------------

    def archive(self):
        self.event.with_user(self.receptionist).action_archive()

    def move(self):
        self.event.with_user(self.receptionist).write({
            "start": MOVED_TO, "stop": MOVED_TO + timedelta(minutes=45)})

    def remove_customer(self):
        self.event.with_user(self.receptionist).write({"partner_ids": [(3, self.maria.id)]})

    # ------------------------------------------------------------
    # Defect 6: the change comes while Meta has not answered yet
    # ------------------------------------------------------------

    def change_in_flight(self, change, lost=False):
        """Run the confirmation job while Meta holds it 2 s (and, with ``lost``, processes
        it and loses the answer); meanwhile ``change`` happens and a free worker runs the jobs
        it queued. Then Meta's status webhook arrives, and the workers run what is left."""
        fault = {"latency": 2, "match": {"path": "/messages"}}
        if lost:
            fault.update(drop=True, processed=True)
        self.fake.add_fault(**fault)

        def meanwhile():
            change()
            self.drain(self.event, rounds=1)

        with self.while_meta_holds_the_send(meanwhile):
            outcome = self.run_job(self.confirmation)
        self.assertIsInstance(outcome, RetryableJobError if lost else str)
        (wamid,) = [m["wamid"] for m in self.fake.messages()
                    if m["biz_opaque_callback_data"] == self.confirmation.identity_key]
        self.deliver_statuses(self.account_a, wamid, "sent")
        self.drain(self.event)
        self.assert_settled(self.event)

    def test_archived_while_the_confirmation_is_in_flight(self):
        self.change_in_flight(self.archive)
        self.assertEqual(self.accepted(self.maria), [("confirmation", OLD),
                                                     ("cancellation", OLD)])
        self.assertIn("WhatsApp cancellation sent to Maria Silva", self.chatter(self.event))

    def test_archived_while_the_confirmation_is_in_flight_and_its_answer_lost(self):
        self.change_in_flight(self.archive, lost=True)
        self.assertEqual(self.accepted(self.maria), [("confirmation", OLD),
                                                     ("cancellation", OLD)])
        confirmation = self.message_of(self.event, "confirmation", self.maria)
        self.assertEqual(confirmation.wamid, self.fake.messages()[0]["wamid"], "adopted")

    def test_moved_while_the_confirmation_is_in_flight(self):
        self.change_in_flight(self.move)
        self.assertEqual(self.accepted(self.maria), [("confirmation", OLD),
                                                     ("reschedule", NEW)])

    def test_moved_while_the_confirmation_is_in_flight_and_its_answer_lost(self):
        self.change_in_flight(self.move, lost=True)
        self.assertEqual(self.accepted(self.maria), [("confirmation", OLD),
                                                     ("reschedule", NEW)])

    def test_customer_removed_while_the_confirmation_is_in_flight(self):
        self.change_in_flight(self.remove_customer)
        self.assertEqual(self.accepted(self.maria), [("confirmation", OLD),
                                                     ("cancellation", OLD)])

    def test_customer_removed_while_the_confirmation_is_in_flight_and_its_answer_lost(self):
        self.change_in_flight(self.remove_customer, lost=True)
        self.assertEqual(self.accepted(self.maria), [("confirmation", OLD),
                                                     ("cancellation", OLD)])

    # ------------------------------------------------------------
    # Defect 7: the answer was lost, then the change comes
    # ------------------------------------------------------------

    def change_after_a_lost_answer(self, change):
        """Meta processes the confirmation and the answer is lost: its job waits for Meta's
        status. Then ``change`` happens, and only then the status webhook arrives."""
        self.fake.add_fault(drop=True, processed=True, match={"path": "/messages"})
        self.assertIsInstance(self.run_job(self.confirmation), RetryableJobError)
        change()
        self.assertEqual(self.confirmation.state, "pending",
                         "the job settling the lost answer is never dropped")
        (confirmation,) = self.fake.messages()
        self.deliver_statuses(self.account_a, confirmation["wamid"], "sent")
        self.drain(self.event)
        self.assert_settled(self.event)

    def test_archived_after_a_lost_answer(self):
        self.change_after_a_lost_answer(self.archive)
        self.assertEqual(self.accepted(self.maria), [("confirmation", OLD),
                                                     ("cancellation", OLD)])

    def test_moved_after_a_lost_answer_gives_a_reschedule(self):
        self.change_after_a_lost_answer(self.move)
        self.assertEqual(self.accepted(self.maria), [("confirmation", OLD),
                                                     ("reschedule", NEW)],
                         "not a second confirmation")

    def test_customer_removed_after_a_lost_answer(self):
        self.change_after_a_lost_answer(self.remove_customer)
        self.assertEqual(self.accepted(self.maria), [("confirmation", OLD),
                                                     ("cancellation", OLD)])

    def test_uncertain_confirmation_still_gets_its_cancellation(self):
        """The request was dropped before Meta processed it and no status ever comes: after
        the grace period the confirmation is *uncertain* (Meta may have sent it), and the
        cancellation goes, since the customer may be on the way."""
        self.fake.add_fault(drop=True, match={"path": "/messages"})
        self.run_job(self.confirmation)
        self.archive()
        cancellation = self.send_jobs(self.event) - self.confirmation
        self.assertIsInstance(self.run_job(cancellation), RetryableJobError, "it waits")
        self.age_attempt(self.message_of(self.event, "confirmation", self.maria), 3600)
        self.drain(self.event)
        self.assert_settled(self.event)
        confirmation = self.message_of(self.event, "confirmation", self.maria)
        self.assertRecordValues(confirmation, [{"status": "failed", "wa_uncertain": True}])
        self.assertEqual(self.accepted(self.maria), [("cancellation", OLD)])

    # ------------------------------------------------------------
    # A job that started but has not written its intent yet
    # ------------------------------------------------------------

    def test_moved_while_the_confirmation_job_runs_before_its_intent(self):
        """The runner stored *started* for the confirmation job, which may still send the
        old time: the move plans the reschedule. The job then finds the time changed and
        sends nothing, so the reschedule becomes the confirmation of the new time: one
        message, matching the final state."""
        self.confirmation.write({"state": "started"})
        self.move()
        reschedule = self.env["queue.job"].search([("identity_key", "=", send_key(
            self.event.id, "reschedule", self.maria.id, NEW))])
        self.assertTrue(reschedule, "a reschedule, not a second confirmation")
        self.assertIsInstance(self.run_job(reschedule), RetryableJobError,
                              "it waits for the job in flight")
        self.confirmation.write({"state": "enqueued"})
        self.assertIn("time changed", self.run_job(self.confirmation))
        self.drain(self.event)
        self.assert_settled(self.event)
        self.assertEqual(self.accepted(self.maria), [("confirmation", NEW)])

    def test_move_of_a_queued_confirmation_confirms_the_new_time(self):
        self.move()
        self.assertEqual(self.confirmation.state, "cancelled")
        self.drain(self.event)
        self.assert_settled(self.event)
        self.assertEqual(self.accepted(self.maria), [("confirmation", NEW)])

    def test_throttled_confirmation_is_withdrawn_when_the_appointment_is_cancelled(self):
        """Meta answered 130429 (nothing sent): the row is pending and its job waits. The
        cancellation drops the job and withdraws the row, so nothing waits forever."""
        self.fake.add_fault(code=130429, match={"path": "/messages"})
        self.assertIsInstance(self.run_job(self.confirmation), RetryableJobError)
        self.archive()
        self.assertEqual(self.confirmation.state, "cancelled")
        self.drain(self.event)
        self.assert_settled(self.event)
        self.assertEqual(self.message_of(self.event, "confirmation", self.maria).status,
                         "withdrawn")
        self.assertEqual(self.accepted(self.maria), [], "nothing was ever sent")

    # ------------------------------------------------------------
    # The cron: attempts whose job is gone
    # ------------------------------------------------------------

    def lose_the_job(self, **fault):
        self.fake.add_fault(match={"path": "/messages"}, **fault)
        self.run_job(self.confirmation)
        self.confirmation.button_cancelled()  # by hand, or found dead after its retries
        message = self.message_of(self.event, "confirmation", self.maria)
        self.age_attempt(message, 120)
        return message

    def test_cron_adopts_the_wamid_of_an_orphan_attempt(self):
        message = self.lose_the_job(drop=True, processed=True)
        (accepted,) = self.fake.messages()
        self.deliver_statuses(self.account_a, accepted["wamid"], "sent")
        self.assertEqual(self.env["wac.message"]._wac_cron_settle_attempts(), 1)
        self.assertRecordValues(message, [{"wamid": accepted["wamid"], "status": "sent",
                                           "wa_attempt_open": False}])
        self.assertEqual(self.env["wac.message"]._wac_cron_settle_attempts(), 0)

    def test_cron_marks_an_orphan_attempt_uncertain_after_the_grace_period(self):
        message = self.lose_the_job(drop=True)
        self.env["wac.message"]._wac_cron_settle_attempts()
        self.assertTrue(message.wa_attempt_open, "within the grace period: wait for Meta")
        self.age_attempt(message, 3600)
        self.env["wac.message"]._wac_cron_settle_attempts()
        self.assertRecordValues(message, [{"status": "failed", "wa_uncertain": True,
                                           "wa_attempt_open": False, "wa_can_retry": True}])
        notified = self.event.message_ids.filtered(lambda m: "Meta may have sent it" in m.body)
        self.assertEqual(notified.partner_ids, self.organizer_a.partner_id)

    def test_cron_fails_a_pending_message_whose_job_is_gone(self):
        message = self.lose_the_job(status=500)  # answered: nothing sent, retry planned
        self.assertFalse(message.wa_attempt_open)
        self.env["wac.message"]._wac_cron_settle_attempts()
        self.assertEqual(message.status, "failed")
        self.assertTrue(message.wa_can_retry)
        self.assertIn("Press Retry", message.error_details)

    def test_cron_leaves_messages_with_a_live_job_alone(self):
        self.fake.add_fault(drop=True, match={"path": "/messages"})
        self.run_job(self.confirmation)
        message = self.message_of(self.event, "confirmation", self.maria)
        self.age_attempt(message, 3600)
        self.assertEqual(self.env["wac.message"]._wac_cron_settle_attempts(), 0)
        self.assertTrue(message.wa_attempt_open, "its own job settles it")

    # ------------------------------------------------------------
    # Who may book
    # ------------------------------------------------------------

    def test_a_receptionist_books_for_a_new_customer(self):
        """Internal User plus Contact Creation is all it takes (docs/automation.md); without
        Contact Creation the new customer cannot be created."""
        Partner = self.env["res.partner"].with_user(self.receptionist)
        customer = Partner.create({"name": "Carla Nova", "mobile": "+55 11 99555-0101"})
        event = self.env["calendar.event"].with_user(self.receptionist).create({
            "name": "Avaliação", "start": FUTURE_START,
            "stop": FUTURE_START + timedelta(minutes=30), "user_id": self.organizer_a.id,
            "partner_ids": [(6, 0, [self.organizer_a.partner_id.id, customer.id])]})
        self.assertEqual(event.wa_company_id, self.company_a)
        self.assertEqual(self.send_jobs(event).mapped("identity_key"), [
            send_key(event.id, "confirmation", customer.id, OLD)])
        self.assertIn("planned for 1 attendee(s)", event.wa_automation_note)
        self.receptionist.groups_id -= self.env.ref("base.group_partner_manager")
        with self.assertRaises(AccessError):
            Partner.create({"name": "Sem Permissão"})
