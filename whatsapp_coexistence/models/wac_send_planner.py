"""What to send to whom, and when: the calendar hooks, the planner and its notes.

The calendar hooks (``calendar.event``'s ``create``, ``write`` and ``unlink``) call
:class:`WacSendPlanner` in the calendar transaction. A small batch (a form) is planned there
and then; a batch of :data:`PLAN_IN_JOB_MIN` appointments or more (an import, a long
recurrence moved at once) is handed to a planning job, so that the calendar operation does
not wait for the hundreds of send jobs it plans. Planning only decides and enqueues: one send
job per (event, message type, attendee, start time), built by ``wac.send._wac_send_job``.
Everything slow or fallible (Meta, rate limits, quiet hours) happens in the send job.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple

import babel.dates
import pytz
from markupsafe import Markup

from odoo import api, fields, models
from odoo.tools.misc import babel_locale_parse, get_lang

from ..const import CHANNEL_WHATSAPP, MESSAGE_KINDS
from ..tools.wa_cloud import phone as wa_phone
from ..tools.wa_cloud import ratelimit
from ..tools.wa_cloud.send_key import start_key
from .res_company import wac_local

#: Reminders are enqueued this long before they are due (the planner runs every hour).
REMINDER_LOOKAHEAD = timedelta(hours=3)
#: A reminder found late by the planner still goes if the appointment is this far away.
REMINDER_MIN_LEAD = timedelta(hours=1)
#: A batch of at least this many appointments of one company is planned by a job.
PLAN_IN_JOB_MIN = 50
#: Context key: plan in this transaction whatever the batch size (the planning job, the cron).
PLAN_INLINE = "wac_plan_inline"
#: queue_job retries of the planning job.
PLAN_MAX_RETRIES = 20


class PlanItem(NamedTuple):
    """What to plan for one appointment.

    :ivar event: the appointment (a deleted one's id only: ``snapshot`` has its data)
    :ivar kinds: message types to plan
    :ivar partners: the attendees concerned (added or removed ones); ``None``: every customer
    :ivar snapshot: the data of a deleted appointment (``calendar.event._wac_data``)
    """

    event: models.BaseModel
    kinds: tuple
    partners: models.BaseModel | None = None
    snapshot: dict | None = None


class ReminderTiming(NamedTuple):
    """Whether a reminder is enqueued now, and its ``eta`` (``None``: at once)."""

    goes: bool
    eta: object = None


@dataclass
class EventPlan:
    """What was planned for one appointment, for its note."""

    kinds: set = field(default_factory=set)
    partner_ids: set = field(default_factory=set)
    reminders: list = field(default_factory=list)


@dataclass
class CompanyPlan:
    """One company's batch being planned: what it reads once, and what it produces."""

    company: models.BaseModel
    account: models.BaseModel
    now: object
    late_ok: bool
    tz: object = None
    offset: timedelta = timedelta(0)
    pilot: set = field(default_factory=set)
    mapped: set = field(default_factory=set)
    numbers: dict = field(default_factory=dict)
    opted_out: set = field(default_factory=set)
    #: event -> automation note; ``None``: the summary of what was planned
    notes: dict = field(default_factory=dict)
    #: event -> chatter lines (per-attendee reasons)
    logs: dict = field(default_factory=dict)
    #: event -> :class:`EventPlan`
    events: dict = field(default_factory=dict)
    #: the :class:`~.wac_send.SendJob` to queue
    jobs: list = field(default_factory=list)
    #: event -> the start its reminders were planned for (``None``: not yet)
    markers: dict = field(default_factory=dict)


class WacSendPlanner(models.AbstractModel):
    """Decide which appointment messages go to whom and when, and enqueue them."""

    _name = "wac.send.planner"
    _description = "WhatsApp Coexistence appointment message planner"

    # ------------------------------------------------------------
    # CALENDAR HOOKS
    # ------------------------------------------------------------

    @api.model
    def _wac_events_created(self, events):
        """Confirmation and reminder; occurrences of a recurrence only get their reminder."""
        def kinds(event):
            recurrence = event.recurrence_id
            if recurrence and recurrence.base_event_id != event:
                return ("reminder",)
            return ("confirmation", "reminder")

        self._wac_plan([PlanItem(event, kinds(event)) for event in events])

    @api.model
    def _wac_events_moved(self, events):
        """The start changed: the customers who heard of the appointment, or may be hearing of
        it right now (a message in flight), get the reschedule, which waits for that message's
        outcome (``wac.send._wac_follow_up``); the others get the confirmation of the new
        time. The reminder moves either way."""
        self.env["wac.send"]._wac_drop_jobs(
            events, kinds=("confirmation", "reminder", "reschedule"))
        customers = events._wac_customers()
        heard = self.env["wac.message"]._wac_heard(
            events.sudo().wa_company_id.ids, events.ids,
            self.env["res.partner"].union(*customers.values()).ids)
        told = heard.informed | heard.unsettled
        items = []
        for event in events:
            partners = customers[event]
            informed = partners.filtered(lambda p, e=event: (e.id, p.id) in told)
            if informed:
                items.append(PlanItem(event, ("reschedule",), informed))
            if partners - informed:
                items.append(PlanItem(event, ("confirmation",), partners - informed))
            items.append(PlanItem(event, ("reminder",)))
        self._wac_plan(items)

    @api.model
    def _wac_events_cancelled(self, events, snapshots=None):
        """Archived or deleted: pending messages are dropped, and the customers who were
        told about the appointment get the cancellation (the job checks that)."""
        self.env["wac.send"]._wac_drop_jobs(
            events, kinds=("confirmation", "reminder", "reschedule"))
        snapshots = snapshots or {}
        customers = events._wac_customers()
        self._wac_plan([PlanItem(event, ("cancellation",), customers[event],
                                 snapshots.get(event.id))
                        for event in events if customers[event]])

    @api.model
    def _wac_attendees_changed(self, event, added, removed):
        """New customers get the confirmation and the reminder, removed ones the
        cancellation (if they heard of the appointment) and none of what was waiting."""
        if removed:
            self.env["wac.send"]._wac_drop_jobs(
                event, partner_ids=set(removed.ids),
                kinds=("confirmation", "reminder", "reschedule"))
        items = []
        if added:
            items.append(PlanItem(event, ("confirmation", "reminder"), added))
        if removed:
            items.append(PlanItem(event, ("cancellation",), removed))
        self._wac_plan(items)

    # ------------------------------------------------------------
    # PLANNING
    # ------------------------------------------------------------

    @api.model
    def _wac_plan(self, items, late_ok=False):
        """Decide and enqueue the messages of several events at once, per company.

        A reminder more than :data:`REMINDER_LOOKAHEAD` away is not enqueued yet: the hourly
        planner (:meth:`_wac_cron_plan_reminders`) enqueues it when it comes near. The queue
        then holds hours of reminders, not months of them (a weekly appointment for a year
        would otherwise sit as 52 jobs per customer in the job runner's memory).

        :param list[PlanItem] items: what to plan
        :param bool late_ok: a reminder whose time has passed goes at once if the appointment
            is still :data:`REMINDER_MIN_LEAD` away (the planner ran late); otherwise it is
            skipped (the confirmation just sent covers it)
        """
        by_company = {}
        for item in items:
            by_company.setdefault(item.event.wa_company_id or self.env.company, []).append(item)
        for company, company_items in by_company.items():
            self._wac_plan_company(company, company_items, late_ok)

    @api.model
    def _wac_plan_company(self, company, items, late_ok=False):
        """Plan one company's items: at once, in a planning job, or not at all (and say why
        on the appointments).

        A pause or the kill switch does not stop the planning: the send jobs run when due and
        hold their messages until the stop ends (``Blocker.holds``).
        """
        blocker = self.env["wac.send"]._wac_company_blocker(company)
        if blocker and not blocker.holds:
            self._wac_plan_blocked(items, blocker.reason, blocker.worth_a_log)
            return
        if len(items) >= PLAN_IN_JOB_MIN and not self.env.context.get(PLAN_INLINE):
            self._wac_defer_plan(company, items, late_ok)
            return
        plan = self._wac_plan_start(company, items, late_ok)
        for item, partners in zip(items, self._wac_plan_recipients(plan, items)):
            self._wac_plan_item(plan, item, partners)
        self.env["wac.send"]._wac_enqueue_many(plan.jobs)
        plan.notes.update(self._wac_plan_notes(
            {event: plan.events[event] for event, note in plan.notes.items() if note is None},
            plan.tz))
        if blocker:
            plan.notes = {event: self.env._(
                "%(note)s Held while this lasts: %(reason)s", note=note,
                reason=blocker.reason) for event, note in plan.notes.items()}
        self._wac_write_notes(plan.notes, {e: lines for e, lines in plan.logs.items() if lines},
                              plan.markers)

    @api.model
    def _wac_plan_blocked(self, items, reason, worth_a_log):
        """The company sends nothing now: every live appointment says why."""
        notes, logs = {}, {}
        for item in items:
            if not item.snapshot:
                notes[item.event] = reason
                if worth_a_log:
                    logs.setdefault(item.event, []).append(reason)
        self._wac_write_notes(notes, logs)

    @api.model
    def _wac_plan_start(self, company, items, late_ok):
        """What a company's batch reads once: its account, templates, time zone.

        :rtype: CompanyPlan
        """
        account = company.sudo().wa_account_id
        mapped = set(self.env["wac.template.mapping"].sudo().search_fetch([
            ("company_id", "=", company.id)], ["message_type"]).mapped("message_type"))
        return CompanyPlan(
            company=company, account=account, now=self.env["wac.send"]._wac_now(),
            late_ok=late_ok, tz=company._wac_tz(), pilot=account._pilot_numbers(),
            offset=timedelta(hours=account.reminder_offset_hours or 0), mapped=mapped)

    @api.model
    def _wac_plan_recipients(self, plan, items):
        """The partners each item writes to (in the items' order: one event may come twice,
        attendees added and removed), with their numbers and opt-outs read into ``plan``."""
        customers = self.env["calendar.event"].union(*(
            item.event for item in items
            if item.partners is None and not item.snapshot))._wac_customers()
        recipients = [
            item.partners if item.partners is not None else (
                customers[item.event] if not item.snapshot else self.env["res.partner"])
            for item in items]
        company = plan.company
        plan.numbers = {p: p._wac_number(company)
                        for p in self.env["res.partner"].union(*recipients)}
        keys = {wa_phone.canonical(n) for n in plan.numbers.values() if n}
        plan.opted_out = set(self.env["wac.contact"].sudo().search_fetch([
            ("company_id", "=", company.id), ("phone_key", "in", list(keys)),
            ("opted_out", "=", True)], ["phone_key"]).mapped("phone_key")) if keys else set()
        return recipients

    @api.model
    def _wac_plan_item(self, plan, item, partners):
        """Plan the messages of one :class:`PlanItem` to ``partners`` into ``plan``."""
        event, snapshot = item.event, item.snapshot
        data = snapshot or event._wac_data()
        start = fields.Datetime.from_string(data["start"])
        # The planner's runs do not repeat what creating the event already logged.
        lines = plan.logs.setdefault(event, []) if not (snapshot or plan.late_ok) else []
        plan.events.setdefault(event, EventPlan())
        if start <= plan.now:
            if not snapshot:
                plan.notes[event] = self.env._(
                    "The appointment is in the past: no WhatsApp message.")
            return
        ok_partners = []
        for partner in partners:
            number = plan.numbers.get(partner)
            refusal = partner._wac_recipient_refusal(
                number, plan.company, plan.pilot,
                opted_out=bool(number) and wa_phone.canonical(number) in plan.opted_out)
            if refusal:
                lines.append(refusal)
            else:
                ok_partners.append(partner)
        for kind in item.kinds:
            self._wac_plan_kind(plan, item, kind, data, ok_partners, lines)
        if not snapshot and event not in plan.notes:
            plan.notes[event] = None

    @api.model
    def _wac_plan_kind(self, plan, item, kind, data, partners, lines):
        """Queue the ``kind`` message of an item to each of ``partners``, or log why not."""
        start = fields.Datetime.from_string(data["start"])
        summary = plan.events[item.event]
        if kind not in plan.mapped:
            if kind == "reminder" and not item.snapshot and item.partners is None:
                plan.markers[item.event] = start
            if partners:
                lines.append(self.env._(
                    "No approved template is mapped for the %(kind)s message of %(company)s.",
                    kind=self.env["wac.send"]._wac_kind_label(kind), company=plan.company.name))
            return
        eta = None
        if kind == "reminder":
            timing = self._wac_plan_reminder(plan, item, start, partners, lines)
            if not timing.goes:
                return
            eta = timing.eta
        Send = self.env["wac.send"]
        for partner in partners:
            plan.jobs.append(Send._wac_send_job(plan.company, data["id"], kind, partner,
                                                start_key(start), item.snapshot, eta,
                                                data["name"]))
            summary.kinds.add(kind)
            summary.partner_ids.add(partner.id)

    @api.model
    def _wac_plan_reminder(self, plan, item, start, partners, lines):
        """When the reminder of an item goes, marking the event's reminders as planned (or
        left to the hourly planner).

        :rtype: ReminderTiming
        """
        reminders = plan.events[item.event].reminders
        eta = self._wac_reminder_eta(plan.account, start, plan.offset, plan.tz)
        if eta and eta > plan.now + REMINDER_LOOKAHEAD:
            # Enqueued by the planner when it comes near.
            if partners:
                reminders.append(eta)
            if not item.snapshot:
                plan.markers[item.event] = None
            return ReminderTiming(False)
        if not item.snapshot and item.partners is None:
            plan.markers[item.event] = start
        if not eta or eta <= plan.now:
            if not (plan.late_ok and start - plan.now >= REMINDER_MIN_LEAD):
                if partners:
                    lines.append(self.env._(
                        "No reminder: the appointment is less than %(hours)s hour(s) away.",
                        hours=plan.account.reminder_offset_hours))
                return ReminderTiming(False)
            eta = None  # late: at once
        reminders.append(eta or plan.now)
        return ReminderTiming(True, eta)

    @api.model
    def _wac_defer_plan(self, company, items, late_ok):
        """Hand a large batch to the planning job (``wac.send._wac_job_plan``); the events
        say so meanwhile."""
        self.env["wac.send"].sudo().with_company(company).with_delay(
            channel=CHANNEL_WHATSAPP, max_retries=PLAN_MAX_RETRIES,
            description="WhatsApp: plan the messages of %d appointments of %s" % (
                len(items), company.name),
        )._wac_job_plan(company.id, [
            (item.event.id, list(item.kinds),
             item.partners.ids if item.partners is not None else None, item.snapshot)
            for item in items], late_ok)
        self._wac_write_notes({
            item.event: self.env._("WhatsApp messages are being planned.")
            for item in items if not item.snapshot}, {})

    @api.model
    def _wac_plan_deferred(self, company, items, late_ok=False):
        """Plan a batch deferred by :meth:`_wac_defer_plan` (the planning job's body).

        The appointments are read as they are now. One deleted meanwhile is skipped, and so
        is one archived meanwhile unless the item is its cancellation: the calendar hooks of
        those changes already planned what they call for. A deleted appointment's
        cancellation goes from its snapshot. Identity keys and the send job's own checks keep
        an item planned twice (moved meanwhile) from sending twice.

        :param list items: ``[(event id, kinds, partner ids or None, snapshot or None)]``, as
            stored in the job
        """
        Event = self.env["calendar.event"].with_context(active_test=False)
        Partner = self.env["res.partner"].with_context(active_test=False)
        alive = set(Event.browse([item[0] for item in items]).exists().ids)
        planned = []
        for event_id, kinds, partner_ids, snapshot in items:
            event = Event.browse(event_id)
            if not snapshot and (event_id not in alive or (
                    not event.active and "cancellation" not in kinds)):
                continue
            partners = Partner.browse(partner_ids).exists() if partner_ids is not None else None
            planned.append(PlanItem(event, tuple(kinds), partners, snapshot))
        self.with_company(company).with_context(**{PLAN_INLINE: True})._wac_plan_company(
            company, planned, late_ok)
        return "%d of %d appointment(s) planned" % (len(planned), len(items))

    @api.model
    def _wac_reminder_eta(self, account, start, offset, tz):
        """When the reminder of an appointment starting at ``start`` (UTC) goes: ``offset``
        before, pushed to the end of the quiet hours; ``None`` if that is not before start."""
        eta = start - offset
        local = wac_local(eta, tz)
        if ratelimit.in_quiet_hours(local, account.quiet_hours_start, account.quiet_hours_end):
            local = tz.normalize(ratelimit.quiet_hours_end(
                local, account.quiet_hours_start, account.quiet_hours_end))
            eta = local.astimezone(pytz.utc).replace(tzinfo=None)
        return eta if eta < start else None

    @api.model
    def _wac_cron_plan_reminders(self):
        """Hourly: enqueue the reminders that come within :data:`REMINDER_LOOKAHEAD`.

        Events of companies whose automation runs, active, not started, whose reminders were
        not planned for their current start (``wa_reminder_start``). Identity keys keep a
        reminder already waiting from being queued twice. A paused company (or the kill
        switch) still plans: its reminders are held when due, not lost.
        """
        now = self.env["wac.send"]._wac_now()
        accounts = self.env["wac.account"].sudo().search([
            ("automation_mode", "!=", "disabled"),
            "|", ("state", "=", "connected"), ("automation_paused", "=", True)])
        events = self.env["calendar.event"]
        for account in accounts:
            horizon = now + timedelta(hours=account.reminder_offset_hours) + REMINDER_LOOKAHEAD
            self.env.flush_all()
            self.env.cr.execute("""
                SELECT id FROM calendar_event
                 WHERE wa_company_id = %s AND active AND start > %s AND start <= %s
                   AND wa_reminder_start IS DISTINCT FROM start
                 ORDER BY start LIMIT 5000""", (account.company_id.id, now, horizon))
            events |= events.browse([row[0] for row in self.env.cr.fetchall()])
        self.with_context(**{PLAN_INLINE: True})._wac_plan(
            [PlanItem(event, ("reminder",)) for event in events.sudo()], late_ok=True)
        return len(events)

    # ------------------------------------------------------------
    # NOTES
    # ------------------------------------------------------------

    @api.model
    def _wac_plan_notes(self, summary, tz):
        """The automation note of each event: what was planned, for how many attendees, and
        when the reminder goes (short date and time, in ``tz`` and the user's language).

        :param dict summary: ``{event: EventPlan}``
        :rtype: dict
        """
        _ = self.env._
        labels = dict(self.env["wac.template.mapping"]._fields["message_type"]
                      ._description_selection(self.env))
        # One locale for the batch: format_datetime() looks the language up at each call.
        locale = babel_locale_parse(get_lang(self.env).code)
        heads, notes = {}, {}
        for event, planned in summary.items():
            reminder_at = max(planned.reminders, default=None)
            if not planned.kinds and not reminder_at:
                notes[event] = _("Nothing planned on WhatsApp for this appointment.")
                continue
            key = (frozenset(planned.kinds), len(planned.partner_ids))
            if key not in heads:
                heads[key] = _(
                    "WhatsApp %(kinds)s planned for %(count)s attendee(s).",
                    kinds=", ".join(labels[k].lower() for k in MESSAGE_KINDS
                                    if k in planned.kinds),
                    count=len(planned.partner_ids)) if planned.kinds else _(
                    "WhatsApp reminder planned.")
            note = heads[key]
            if reminder_at:
                note += " " + _("Reminder on %(when)s.", when=babel.dates.format_datetime(
                    wac_local(reminder_at, tz), "short", locale=locale))
            notes[event] = note
        return notes

    @api.model
    def _wac_write_notes(self, notes, logs, markers=None):
        """Store the automation note of each event and the start its reminders were planned
        for (``wa_reminder_start``, ``None`` while the planner still has to), with one UPDATE
        and without going through calendar's ``write`` (which would plan again); log the
        per-attendee reasons on the chatter."""
        markers = markers or {}
        events = set(notes) | set(markers)
        if events:
            rows = [(event.id, notes.get(event), event in markers, markers.get(event))
                    for event in events]
            self.env.cr.execute("""
                UPDATE calendar_event e
                   SET wa_automation_note = COALESCE(v.note, e.wa_automation_note),
                       wa_reminder_start = CASE WHEN v.has_marker THEN v.marker
                                                ELSE e.wa_reminder_start END
                  FROM unnest(%s::int[], %s::varchar[], %s::bool[], %s::timestamp[])
                       AS v(id, note, has_marker, marker)
                 WHERE e.id = v.id""", [list(column) for column in zip(*rows)])
            self.env["calendar.event"].browse([e.id for e in events]).invalidate_recordset(
                ["wa_automation_note", "wa_reminder_start"])
        for event, lines in logs.items():
            event.sudo()._message_log(body=Markup("<p>%s</p><ul>%s</ul>") % (
                self.env._("WhatsApp automation"),
                Markup("").join(Markup("<li>%s</li>") % line for line in dict.fromkeys(lines))))
