from odoo import models
from odoo.exceptions import UserError


class CalendarEvent(models.Model):
    """The customer's WhatsApp thread, one click from the appointment."""

    _inherit = "calendar.event"  # pylint: disable=consider-merging-classes-inherited

    def action_wa_conversation(self):
        """Open the conversations of the appointment's customers in its sending company."""
        self.ensure_one()
        company = self.wa_company_id or self.env.company
        conversations = self.env["wac.conversation"].search([
            ("company_id", "=", company.id),
            ("partner_id", "in", self.wa_attendee_ids.partner_id.ids)])
        if not conversations:
            raise UserError(self.env._(
                "No WhatsApp conversation with the customers of this appointment yet in "
                "%(company)s.", company=company.name))
        return self.env["wac.conversation"]._wac_open_action(conversations)
