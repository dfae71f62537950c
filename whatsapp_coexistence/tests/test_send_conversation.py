"""What the send job writes for a new customer: the contact and the conversation, quietly,
and in a bounded number of queries (issue #10: the send had grown by a conversation made
through mail.thread and a contact claim of five round trips)."""

from odoo import sql_db
from odoo.tests import tagged

from .common_automation import WacAutomationCase

#: Queries of one send to a new customer (the job's and its side cursor's: intent, contact,
#: conversation, outcome, chatter): a guard against the send growing again, not a benchmark.
SEND_QUERY_BUDGET = 28


@tagged("post_install", "-at_install")
class TestSendConversation(WacAutomationCase):
    def send_as_organizer(self, event, partner):
        """The send job as the runner runs it: as the user who booked the appointment."""
        env = self.env(user=self.organizer_a)
        return self.send(event.with_env(env), "confirmation", partner.with_env(env))

    def test_first_send_opens_the_conversation_without_note_or_follower(self):
        """The conversation of a new customer carries no "created" note and no follower:
        its chatter holds the team's notes and the inbound notifications, and who is told
        of the customer's messages is ``conversation_notify``'s choice, not whoever booked
        the appointment whose confirmation created it."""
        event = self.make_event(self.maria)
        self.assertTrue(self.send_as_organizer(event, self.maria).startswith("sent"))

        message = self.message_of(event, "confirmation", self.maria)
        conversation = message.conversation_id
        self.assertEqual((conversation.contact_id, conversation.partner_id,
                          conversation.company_id),
                         (message.contact_id, self.maria, self.company_a))
        self.assertEqual(conversation.last_outbound_at, message.message_at)
        self.assertFalse(conversation.needs_answer)
        self.assertFalse(conversation.message_ids, "no note on the conversation")
        self.assertFalse(conversation.message_follower_ids, "nobody follows it")

    def test_send_to_a_new_customer_stays_within_its_query_budget(self):
        event = self.make_event(self.joao | self.maria)
        self.send_as_organizer(event, self.joao)  # warms the caches
        # Odoo's counter of every cursor: assertQueryCount sees the job's cursor only, and
        # the intent, the contact and the conversation are written on the side cursor.
        before = sql_db.sql_counter
        self.assertTrue(self.send_as_organizer(event, self.maria).startswith("sent"))
        queries = sql_db.sql_counter - before
        self.assertLessEqual(queries, SEND_QUERY_BUDGET)
        self.assertTrue(self.message_of(event, "confirmation", self.maria).conversation_id)
