from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools.wa_cloud import template_params as tp

#: The placeholders of the manual message text (``{first_name}``) and the parameter sources
#: they read.
MANUAL_TEXT_KEYS = {
    "name": "attendee_name", "first_name": "attendee_first_name", "date": "appointment_date",
    "time": "appointment_time", "weekday": "appointment_weekday", "location": "location",
    "organizer": "organizer", "company": "company_name", "title": "appointment_title"}


class CalendarEvent(models.Model):
    """Appointments trigger WhatsApp messages: created → confirmation (+ reminder), moved →
    reschedule (+ reminder moved), archived or deleted → cancellation (reminder dropped).

    The sending company is ``wa_company_id``: the company the user works in when booking
    (Odoo's usual default), editable on the appointment. It decides the number, the templates,
    the limits and the time zone of the messages.
    """

    _inherit = "calendar.event"

    wa_company_id = fields.Many2one(
        "res.company", string="WhatsApp company", index=True,
        default=lambda self: self.env.company,
        domain="[('id', 'in', allowed_company_ids)]",
        help="The company whose WhatsApp number writes to the attendees about this "
        "appointment.")
    wa_automation_note = fields.Char(
        "WhatsApp automation", readonly=True, copy=False,
        help="What the WhatsApp automation planned for this appointment, or why nothing.")
    wa_reminder_start = fields.Datetime(
        readonly=True, copy=False,
        help="The start for which the WhatsApp reminders were planned; empty while the "
        "hourly planner still has to enqueue them.")
    wa_message_ids = fields.One2many("wac.message", compute="_compute_wa_message_ids",
                                     string="WhatsApp messages")
    wa_message_count = fields.Integer(compute="_compute_wa_message_ids")
    wa_attendee_ids = fields.One2many(
        "calendar.attendee", compute="_compute_wa_attendee_ids", string="Customers",
        help="Attendees who are not users of this database: the ones WhatsApp writes to.")
    wa_manual_partner_id = fields.Many2one(
        "res.partner", compute="_compute_wa_manual_partner_id",
        help="The customer the WhatsApp (manual) button writes to.")

    def _compute_wa_message_ids(self):
        Message = self.env["wac.message"]
        allowed = Message.has_access("read")
        messages = Message.search([("res_model", "=", "calendar.event"),
                                   ("res_id", "in", self.ids)]) if allowed and self.ids \
            else Message
        for event in self:
            event.wa_message_ids = messages.filtered(lambda m, e=event: m.res_id == e.id)
            event.wa_message_count = len(event.wa_message_ids)

    @api.depends("attendee_ids.partner_id")
    def _compute_wa_attendee_ids(self):
        customers = self._wac_customers()
        for event in self:
            event.wa_attendee_ids = event.attendee_ids.filtered(
                lambda a, c=customers[event]: a.partner_id in c)

    @api.depends("attendee_ids.partner_id", "partner_ids")
    def _compute_wa_manual_partner_id(self):
        for event in self:
            partners = event._wac_customers()[event] if event.id else event.partner_ids.browse()
            event.wa_manual_partner_id = partners if len(partners) == 1 else False

    def _wac_customers(self):
        """``{event: customers}``: the attendees who are not internal users, with one query
        for the internal users among all the attendees (archived users count: they are still
        staff)."""
        events = self.sudo()
        # _origin: the form of an appointment being edited holds new records.
        partner_ids = [pid for pid in events.attendee_ids.partner_id._origin.ids if pid]
        internal = set(self.env["res.users"].sudo().with_context(active_test=False).search_fetch(
            [("partner_id", "in", partner_ids), ("share", "=", False)], ["partner_id"],
        ).partner_id.ids) if partner_ids else set()
        return {event: event.attendee_ids.partner_id.filtered(
            lambda p: p._origin.id not in internal) for event in events}

    def _wac_data(self):
        """What a message says about this appointment, as plain data (a deleted event's
        cancellation is rendered from this snapshot)."""
        self.ensure_one()
        event = self.sudo()
        return {
            "id": event.id,
            "name": event.name or "",
            "start": fields.Datetime.to_string(event.start),
            "allday": bool(event.allday),
            "start_date": fields.Date.to_string(event.start_date) if event.start_date else False,
            "location": event.location or "",
            "organizer": event.user_id.name or "",
            "organizer_tz": event.user_id.tz or False,
            "company_id": event.wa_company_id.id,
        }

    # ------------------------------------------------------------
    # TRIGGERS
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        events = super().create(vals_list)
        self.env["wac.send.planner"]._wac_events_created(events)
        return events

    def write(self, vals):
        if not self:
            return super().write(vals)
        Planner = self.env["wac.send.planner"]
        watch_start = bool({"start", "start_date", "allday"} & set(vals))
        watch_active = "active" in vals
        watch_people = bool({"partner_ids", "attendee_ids"} & set(vals))
        before = {}
        if watch_start or watch_active or watch_people:
            events = self.sudo().with_context(active_test=False)
            customers = events._wac_customers() if watch_people else {}
            for event in events:
                before[event.id] = (event.start, event.active, customers.get(event))
        result = super().write(vals)
        if not before:
            return result
        moved, archived, restored = self.browse(), self.browse(), self.browse()
        events = self.sudo().with_context(active_test=False).exists()
        customers = events._wac_customers() if watch_people else {}
        for event in events:
            start, active, people = before.get(event.id, (None, None, None))
            if active and not event.active:
                archived |= event
                continue
            if not active and event.active:
                restored |= event
                continue
            if not event.active:
                continue
            if watch_start and start != event.start:
                moved |= event
            if watch_people:
                now = customers[event]
                added, removed = now - people, people - now
                if added or removed:
                    Planner._wac_attendees_changed(event, added, removed)
        if archived:
            Planner._wac_events_cancelled(archived)
        if restored:
            Planner._wac_events_created(restored)
        if moved:
            Planner._wac_events_moved(moved)
        return result

    def unlink(self):
        if self:
            live = self.sudo().filtered("active")
            self.env["wac.send.planner"]._wac_events_cancelled(
                live, snapshots={event.id: event._wac_data() for event in live})
        return super().unlink()

    # ------------------------------------------------------------
    # MANUAL FLOW
    # ------------------------------------------------------------

    def action_wa_manual(self):
        """Open WhatsApp (wa.me) with the company's message for the appointment's customer.

        Works in every automation mode, kill switch included: a person sends it, from the
        phone app or WhatsApp Web.
        """
        self.ensure_one()
        partner = self.wa_manual_partner_id
        if not partner:
            raise UserError(self.env._(
                "This appointment has several customers: use the WhatsApp button of each one "
                "in the WhatsApp tab."))
        return self._wa_manual_action(partner)

    def _wa_manual_action(self, partner):
        self.ensure_one()
        url = self._wac_manual_link(partner)
        if not url:
            raise UserError(self.env._(
                "%(name)s has no mobile number usable on WhatsApp. Add one to the contact "
                "(with the country code if it is abroad).", name=partner.name))
        self.sudo()._message_log(body=self.env._(
            "WhatsApp (manual) opened for %(name)s by %(user)s.", name=partner.name,
            user=self.env.user.name))
        return {"type": "ir.actions.act_url", "url": url, "target": "new"}

    def _wac_manual_link(self, partner):
        """``https://wa.me/<number>?text=<message>`` for one attendee, from the company's
        editable text, in the company's language and time zone. Works in every mode."""
        self.ensure_one()
        company = self.wa_company_id or self.env.company
        number = partner._wac_number(company)
        if not number:
            return None
        account = company.sudo().wa_account_id
        lang = company.partner_id.lang or self.env.lang or "en_US"
        values = self.env["wac.template.mapping"]._wac_render_values(
            self._wac_data(), partner, company, lang)
        text = tp.render_text(
            (account.manual_message_text if account else None)
            or self.env["wac.account"]._wac_default_manual_text(lang),
            # Values on one line each; the company's text keeps its own line breaks.
            {key: tp.sanitize_param(values[source], fallback="")
             for key, source in MANUAL_TEXT_KEYS.items()})
        return tp.wa_me_link(number, text)

    def action_wa_open_messages(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("WhatsApp messages"),
            "res_model": "wac.message",
            "view_mode": "list,form",
            "domain": [("res_model", "=", "calendar.event"), ("res_id", "=", self.id)],
        }
