"""Health webhooks (quality, display name, messaging limit) and the Meta errors that mark
people (131050, 131047), end to end: signed POST, job, visible effect."""

from odoo.tests import tagged

from . import payloads as P
from .common import WacHttpCase


@tagged("post_install", "-at_install")
class TestWebhookHealth(WacHttpCase):

    def deliver(self, *payloads):
        self.deliver_signed(*payloads)
        events = self.env["wac.webhook.event"].search([])
        self.assertFalse(events.filtered(lambda e: e.state != "done").mapped("summary"))
        return events

    def alert(self, cause):
        return self.env["wac.alert"].search([("account_id", "=", self.account_a.id),
                                             ("cause", "=", cause), ("state", "!=", "closed")])

    def outbound(self, wamid):
        contact = self.env["wac.contact"]._wac_resolve(
            self.account_a, [(P.USER_WA_ID, None, None)])[P.USER_WA_ID]
        message = self.env["wac.message"].create({
            "company_id": self.company_a.id, "account_id": self.account_a.id,
            "contact_id": contact.id, "wamid": wamid, "direction": "out", "source": "api",
            "status": "accepted"})
        return message, contact

    # ------------------------------------------------------------
    # phone_number_quality_update, phone_number_name_update, business_capability_update
    # ------------------------------------------------------------

    def test_quality_flagged_stores_the_event_updates_the_account_and_alerts(self):
        flagged = P.envelope("phone_number_quality_update", {
            "display_phone_number": "5511987654321", "event": "FLAGGED",
            "current_limit": "TIER_250"}, time=1750030073)
        event = self.deliver(flagged)
        self.assertEqual((event.field, event.account_id), ("phone_number_quality_update",
                                                           self.account_a))
        self.assertEqual((self.account_a.quality_rating, self.account_a.health_messaging_limit),
                         ("RED", "TIER_250"))
        self.assertEqual(len(self.alert("quality")), 1)
        self.assertIn("FLAGGED", self.account_a.message_ids.mapped("body")[1])
        self.deliver(P.envelope("phone_number_quality_update", {
            "display_phone_number": "5511987654321", "event": "UNFLAGGED",
            "current_limit": "TIER_1K"}, time=1750030099))
        self.assertEqual(self.account_a.quality_rating, "UNKNOWN")
        self.assertEqual(self.account_a.health_messaging_limit, "TIER_1K")
        self.assertFalse(self.alert("quality"))

    def test_display_name_declined_alerts_and_approved_updates_the_name(self):
        self.deliver(P.envelope("phone_number_name_update", {
            "display_phone_number": "5511987654321", "decision": "DECLINED",
            "requested_verified_name": "Clinica Sorriso Premium",
            "rejection_reason": "NAME_FORMAT_UNACCEPTABLE"}, time=1750030073))
        self.assertEqual(self.account_a.health_name_status, "DECLINED")
        self.assertIn("DECLINED", self.alert("display_name").details)
        self.deliver(P.envelope("phone_number_name_update", {
            "display_phone_number": "5511987654321", "decision": "APPROVED",
            "requested_verified_name": "Clínica Sorriso"}, time=1750030099))
        self.assertEqual(self.account_a.verified_name, "Clínica Sorriso")
        self.assertFalse(self.alert("display_name"))

    def test_business_capability_update_stores_the_messaging_limit(self):
        self.deliver(P.envelope("business_capability_update", {
            "max_daily_conversations_per_business": "TIER_2K",
            "max_phone_numbers_per_business": 2}, time=1750030073))
        self.assertEqual(self.account_a.health_messaging_limit, "TIER_2K")
        self.assertIn("TIER_2K", self.account_a.message_ids[0].body)

    # ------------------------------------------------------------
    # Meta errors that mark people
    # ------------------------------------------------------------

    def test_131050_marks_the_contact_as_stopped_marketing(self):
        message, contact = self.outbound(P.FAILED_WAMID)
        self.assertFalse(contact.marketing_opt_out)
        self.deliver(P.statuses(items=((P.FAILED_WAMID, "failed", "1751142888"),),
                                errors=[P.status_error(131050, title="User stopped marketing "
                                                       "messages")]))
        self.assertEqual((message.status, message.error_code), ("failed", 131050))
        self.assertTrue(contact.marketing_opt_out, "as a user_preferences stop would")
        self.assertFalse(contact.opted_out, "utility messages still go")

    def test_131047_says_a_template_is_required(self):
        message, contact = self.outbound(P.FAILED_WAMID)
        self.deliver(P.statuses(items=((P.FAILED_WAMID, "failed", "1751142888"),),
                                errors=[P.status_error(131047, title="Re-engagement message")]))
        self.assertEqual(message.error_code, 131047)
        self.assertEqual(message.error_title, "Outside the 24 h window: a template is required")
        self.assertFalse(contact.marketing_opt_out)
