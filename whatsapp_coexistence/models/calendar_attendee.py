from odoo import api, fields, models


class CalendarAttendee(models.Model):
    """One WhatsApp (manual) button per customer of an appointment."""

    _inherit = "calendar.attendee"

    wa_is_customer = fields.Boolean(compute="_compute_wa_is_customer")
    wa_number = fields.Char("WhatsApp number", compute="_compute_wa_number")

    @api.depends("partner_id")
    def _compute_wa_is_customer(self):
        Send = self.env["wac.send"]
        for attendee in self:
            attendee.wa_is_customer = bool(
                attendee.event_id and attendee.partner_id in Send._wac_recipients(
                    attendee.event_id))

    @api.depends("partner_id.mobile", "partner_id.phone", "event_id.wa_company_id")
    def _compute_wa_number(self):
        Send = self.env["wac.send"]
        for attendee in self:
            company = attendee.event_id.wa_company_id or self.env.company
            attendee.wa_number = Send._wac_number(attendee.partner_id, company) or False

    def action_wa_manual(self):
        """Open WhatsApp (wa.me) with the company's message for this attendee."""
        self.ensure_one()
        return self.event_id._wa_manual_action(self.partner_id)
