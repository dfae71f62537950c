from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import format_datetime

from ..tools.wa_cloud import template_params as tp

#: A bare "1"/"2" answers the customer's next appointment only if the business wrote to them
#: this recently.
REPLY_RECENT = timedelta(days=3)


class CalendarAttendee(models.Model):
    """A customer of an appointment on WhatsApp: the manual button, and their answers to our
    messages (confirm, cancel) turned into their attendance."""

    _inherit = "calendar.attendee"

    wa_is_customer = fields.Boolean(compute="_compute_wa_is_customer")
    wa_number = fields.Char("WhatsApp number", compute="_compute_wa_number")

    @api.depends("partner_id")
    def _compute_wa_is_customer(self):
        for attendee in self:
            attendee.wa_is_customer = bool(
                attendee.event_id and attendee.partner_id in attendee.event_id._wac_customers()[
                    attendee.event_id])

    @api.depends("partner_id.mobile", "partner_id.phone", "event_id.wa_company_id")
    def _compute_wa_number(self):
        for attendee in self:
            company = attendee.event_id.wa_company_id or self.env.company
            attendee.wa_number = (attendee.partner_id and \
                attendee.partner_id._wac_number(company)) or False

    def action_wa_manual(self):
        """Open WhatsApp (wa.me) with the company's message for this attendee."""
        self.ensure_one()
        return self.event_id._wa_manual_action(self.partner_id)

    # ------------------------------------------------------------
    # REPLIES
    # ------------------------------------------------------------

    @api.model
    def _wac_apply_reply(self, message):
        """A customer answered an appointment message: update their attendance.

        Tied to the appointment by our quick-reply payload (``CONFIRM:<id>``), by the message
        it replies to (``context``), or else, for a bare "1"/"2", by the customer's next
        appointment, provided the business wrote to them in the last 3 days.

        :returns: ``(event, action)`` or ``None``
        """
        account = message.account_id or message.company_id.wa_account_id
        contact = message.contact_id
        if not account or not contact:
            return None
        parsed = tp.parse_payload(message.button_payload)
        if parsed:
            action, event_id = parsed
            event = self.env["calendar.event"].sudo().browse(event_id).exists()
            partner = self.env["res.partner"]
        else:
            action = tp.parse_reply(message.body, account.reply_confirm_words,
                                    account.reply_cancel_words)
            if not action:
                return None
            event, partner = self._wac_replied_to(message)
        if not event:
            event = self._wac_next_appointment(message.company_id, contact)
        if not event or event.wa_company_id != message.company_id:
            return None
        attendees = event.attendee_ids
        attendee = (attendees.filtered(lambda a: a.partner_id == partner)
                    or attendees.filtered(lambda a: a.partner_id == contact.partner_id)
                    or attendees.filtered(lambda a: a.partner_id.wa_phone_key
                                          and a.partner_id.wa_phone_key == contact.phone_key))[:1]
        if not attendee:
            return None
        attendee._wac_apply_attendance(action, message)
        return event, action

    @api.model
    def _wac_replied_to(self, message):
        """The appointment and attendee of the message ``message`` replies to (``context``),
        or empty records."""
        Event = self.env["calendar.event"].sudo()
        if message.context_wamid:
            origin = self.env["wac.message"].sudo().search([
                ("company_id", "=", message.company_id.id),
                ("wamid", "=", message.context_wamid),
                ("res_model", "=", "calendar.event")], limit=1)
            if origin:
                return Event.browse(origin.res_id).exists(), origin.wa_partner_id
        return Event, self.env["res.partner"]

    @api.model
    def _wac_next_appointment(self, company, contact):
        """The customer's next appointment in ``company``, if the business wrote to them
        recently (:data:`REPLY_RECENT`)."""
        recent = self.env["wac.message"].sudo().search_count([
            ("company_id", "=", company.id), ("contact_id", "=", contact.id),
            ("direction", "=", "out"), ("source", "in", ("api", "app")),
            ("message_at", ">=", fields.Datetime.now() - REPLY_RECENT)])
        if not recent:
            return self.env["calendar.event"]
        partners = contact.partner_id
        if contact.phone_key:
            partners |= self.env["res.partner"].sudo().search(
                [("wa_phone_key", "=", contact.phone_key)])
        return self.env["calendar.event"].sudo().search([
            ("wa_company_id", "=", company.id), ("start", ">", fields.Datetime.now()),
            ("attendee_ids.partner_id", "in", partners.ids)], order="start", limit=1)

    def _wac_apply_attendance(self, action, message):
        """Accept or decline for this attendee, and tell the organizer (inbox): a cancellation
        usually calls for another time."""
        self.ensure_one()
        _ = self.env._
        event = self.event_id
        when = format_datetime(self.env, event.start, tz=event.wa_company_id._wac_tz().zone,
                               dt_format="short")
        answer = message.body or message.button_payload or "?"
        if action == tp.CONFIRM:
            if self.state != "accepted":
                self.do_accept()
            text = _("%(name)s confirmed the appointment of %(when)s on WhatsApp (\"%(answer)s\").",
                     name=self.partner_id.name, when=when, answer=answer)
        else:
            if self.state != "declined":
                self.do_decline()
            self.env["wac.send"]._wac_drop_jobs(event, kinds=("reminder",),
                                                partner_ids={self.partner_id.id})
            text = _("%(name)s cancelled the appointment of %(when)s on WhatsApp (\"%(answer)s\").",
                     name=self.partner_id.name, when=when, answer=answer)
        event.message_post(body=text, subtype_xmlid="mail.mt_note",
                           partner_ids=event.user_id.partner_id.ids)
