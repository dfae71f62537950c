from odoo import models

from ..tools.wa_cloud import health as wa_health


class WacWebhookEvent(models.Model):
    """Handlers of the WABA-level health webhooks; each updates the account and its alerts."""

    _inherit = "wac.webhook.event"

    def _wac_handle_phone_number_quality_update(self, account, value, units):
        update = wa_health.quality_update(value)
        vals = {}
        if update.current_limit:
            vals["health_messaging_limit"] = update.current_limit
        if update.event == wa_health.QUALITY_FLAGGED:
            vals["quality_rating"] = "RED"
        elif update.event == wa_health.QUALITY_UNFLAGGED and account.quality_rating == "RED":
            # Meta does not say the new rating: the next health check reads it.
            vals["quality_rating"] = "UNKNOWN"
        account._wac_write_changes(vals)
        account.message_post(body=self.env._(
            "Meta quality update: %(event)s, messaging limit %(limit)s.",
            event=update.event or "?", limit=update.current_limit or "?"),
            subtype_xmlid="mail.mt_note")
        account._wac_evaluate_alerts()
        return "%s, limit %s" % (update.event or "?", update.current_limit or "?")

    def _wac_handle_phone_number_name_update(self, account, value, units):
        update = wa_health.name_update(value)
        vals = {"health_name_status": update.decision or False}
        if update.decision == "APPROVED" and update.requested_verified_name:
            vals["verified_name"] = update.requested_verified_name
        account._wac_write_changes(vals)
        account.message_post(body=self.env._(
            "Meta decided on the display name %(name)s: %(decision)s %(reason)s",
            name=update.requested_verified_name or "?", decision=update.decision or "?",
            reason=update.rejection_reason or ""), subtype_xmlid="mail.mt_note")
        account._wac_evaluate_alerts()
        return "name %s: %s" % (update.requested_verified_name or "?", update.decision or "?")

    def _wac_handle_business_capability_update(self, account, value, units):
        update = wa_health.capability_update(value)
        if update.messaging_limit:
            account._wac_write_changes({"health_messaging_limit": update.messaging_limit})
        account.message_post(body=self.env._(
            "Meta changed the business's messaging limit: %(limit)s.",
            limit=update.messaging_limit or "?"), subtype_xmlid="mail.mt_note")
        return "messaging limit %s" % (update.messaging_limit or "?")
