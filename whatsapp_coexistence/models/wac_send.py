"""Appointment messages: who gets what and when (enqueue), and the send job itself.

Enqueue (``_wac_plan``) runs inside the calendar transaction, batched per company, and only
decides and enqueues: one queue job per (event, message type, attendee, start time), with that
tuple as ``identity_key``. Everything slow or fallible (Meta, rate limits, quiet hours) happens
in the job, ``_wac_job_send``, which checks first that the message is still relevant.

Exactly once, and the crash window
----------------------------------
Each send has a *send key* (the identity key) stored on its ``wac.message`` row
(``wa_send_key``, unique per company) and sent to Meta as ``biz_opaque_callback_data``, which
Meta echoes in every status webhook. The row is written in short transactions of their own,
never in the job's:

1. *intent*: before the HTTP call the row is committed with ``wa_attempt_open`` and the exact
   payload;
2. *result*: right after Meta's answer the ``wamid`` (or the error) is committed and the attempt
   closed.

A rerun of the job reads the row first: a ``wamid`` means sent, stop. An attempt still *open*
means the worker died (or the connection broke) after the intent, so Meta may or may not have
accepted the message. The job then never resends blindly: it looks for a status webhook
carrying the send key (``wac.message.status.biz_opaque_callback_data``) and adopts its
``wamid``; without one it waits (``RetryableJobError``) for a grace period
(``whatsapp_coexistence.uncertain_grace_seconds``, default 300 s, Meta's ``sent`` status
normally comes within seconds); after it, the row is marked failed as *uncertain* and a person
checks the phone or WhatsApp Manager and presses Retry. Errors Meta *answered* (any JSON error)
close the attempt: nothing was sent, so retrying is safe. A timeout, a dropped connection or a
5xx without a body leaves it open, as a crash does.

Follow-ups
----------
A reschedule or a cancellation follows what the customer heard (``_wac_follow_up``): while an
earlier message about the appointment is in flight, it waits for that message's outcome (or its
*uncertain* verdict), then goes or not, once. ``_wac_drop_jobs`` never cancels the job that
settles an open attempt, and a cron (``wac.message._wac_cron_settle_attempts``) settles any
attempt whose job is gone.
"""

import json
import logging
import math
import time
from datetime import date, datetime, timedelta
from typing import NamedTuple

import babel
import babel.dates
import psycopg2
import pytz
from markupsafe import Markup

from odoo import api, fields, models
from odoo.tools import format_datetime
from odoo.tools.misc import babel_locale_parse, get_lang

from odoo.addons.queue_job import delay as qj_delay
from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job

from ..const import PARAM_KILL_SWITCH
from ..tools.wa_cloud import errors as wa_errors
from ..tools.wa_cloud import phone as wa_phone
from ..tools.wa_cloud import ratelimit
from ..tools.wa_cloud import template_params as tp
from ..tools.wa_cloud.client import GraphClient
from .wac_rate_limit import LimitSpec, reserve_slot, restamp_slot
from .wac_template import HELLO_WORLD

_logger = logging.getLogger(__name__)

KINDS = ("confirmation", "reminder", "reschedule", "cancellation")
#: Messages about a change of what a customer heard: they follow what was sent before them.
FOLLOW_UPS = ("reschedule", "cancellation")
#: How long a follow-up waits before it looks again at a message still in flight.
FOLLOW_UP_WAIT = 15
CHANNEL = "root.whatsapp"
#: Meta errors retried this many times before the message is marked failed.
MAX_ATTEMPTS = 6
#: A job never waits longer than this in-process for its rate-limit slot; beyond it the job is
#: postponed. Short, so a worker is never held long.
MAX_SLEEP = 1.0
#: Up to this wait, the slot and the intent are committed together (one transaction less).
SAME_TRANSACTION_WAIT = 0.005
#: The company's cap is held over windows of 1 / RATE_SAFETY seconds: a send reaches Meta a few
#: milliseconds after its slot, and the margin keeps any one-second window under the cap as
#: Meta measures it.
RATE_SAFETY = 0.97
#: A send that leaves later than this after its slot moves its slot in the company's window to
#: when it really left (``pacing.restamp``). Measured at a 20/s cap: half the sends leave 5 ms
#: late, 1 % more than 12 ms, a few 100 ms or more (a slow commit, a descheduled worker). The
#: window's 3 % margin (31 ms) absorbs the usual lateness; the outliers would let the message
#: 20 slots later reach Meta less than a second after them.
RESTAMP_TOLERANCE = 0.015
#: queue_job retries; Meta errors stop earlier (MAX_ATTEMPTS) and waits use ignore_retry.
JOB_MAX_RETRIES = 20
#: Reminders are enqueued this long before they are due (the planner runs every hour).
REMINDER_LOOKAHEAD = timedelta(hours=3)
#: A reminder found late by the planner still goes if the appointment is this far away.
REMINDER_MIN_LEAD = timedelta(hours=1)
#: A batch of at least this many appointments of one company (an import, a long recurrence
#: moved at once) is planned by a job, so that the calendar operation does not wait for the
#: hundreds of queue jobs it plans. Smaller batches (the forms) are planned at once.
PLAN_IN_JOB_MIN = 50
#: Context key: plan in this transaction whatever the batch size (the planning job, the cron).
PLAN_INLINE = "wac_plan_inline"
#: What the send job reads of each record, fetched in one narrow query per model: whole rows
#: (a partner has some 70 columns) made a fifth of a send's cost. A field missing here is
#: still read, lazily.
SEND_FIELDS = {
    "wac.account": [
        "company_id", "state", "automation_mode", "automation_paused",
        "automation_pause_reason", "pilot_allowlist", "phone_number_id", "access_token_enc",
        "rate_limit_mps", "recipient_spacing_s", "recipient_daily_cap", "quiet_hours_start",
        "quiet_hours_end", "reply_confirm_words", "reply_cancel_words"],
    "calendar.event": [
        "name", "start", "allday", "start_date", "location", "user_id", "wa_company_id",
        "active"],
    "res.partner": ["name", "mobile", "phone", "country_id", "lang"],
    "wac.contact": ["opted_out", "partner_id"],
}


def start_key(value):
    """The start time as it appears in send keys: UTC, to the second (``20260203T173000``)."""
    if isinstance(value, str):
        value = fields.Datetime.from_string(value)
    return value.strftime("%Y%m%dT%H%M%S") if value else "none"


def send_key(event_id, kind, partner_id, start):
    """The key of one send: ``wac:<event>:<kind>:<partner>:<start>``.

    It is the job's ``identity_key``, the message row's ``wa_send_key`` and the
    ``biz_opaque_callback_data`` Meta echoes in status webhooks.
    """
    return "wac:%d:%s:%d:%s" % (event_id, kind, partner_id, start)


class SendKey(NamedTuple):
    """The parts of a :func:`send_key`."""

    event_id: int
    kind: str
    partner_id: int
    start: str


def parse_send_key(key):
    """The :class:`SendKey` of ``key``, or ``None`` when it is not one."""
    parts = (key or "").split(":")
    if len(parts) != 5 or parts[0] != "wac" or not (parts[1].isdigit() and parts[3].isdigit()):
        return None
    return SendKey(int(parts[1]), parts[2], int(parts[3]), parts[4])


class SendJob(NamedTuple):
    """One send job before it is queued: the sending company, the arguments of
    :meth:`WacSend._wac_job_send` and the queue_job options (see ``_wac_send_job``)."""

    company: models.BaseModel
    args: tuple
    options: dict


def _babel_locale(lang):
    try:
        return babel.Locale.parse(lang or "en_US")
    except (ValueError, babel.UnknownLocaleError):
        return babel.Locale.parse("en_US")


class Pace(NamedTuple):
    """When a send was due under its company's window: ``slot`` on the database clock,
    ``due`` the same moment on this process's monotonic clock."""

    key: str
    slot: float
    due: float


class WacSend(models.AbstractModel):
    """The appointment message pipeline (no table): planning, rendering and the send job."""

    _name = "wac.send"
    _description = "WhatsApp Coexistence appointment messages"

    # ------------------------------------------------------------
    # CONTEXT: company, account, switches, time
    # ------------------------------------------------------------

    @api.model
    def _wac_now(self):
        """Now (UTC, naive); ``wac_now`` in the context runs the planner as of another time."""
        return self.env.context.get("wac_now") or fields.Datetime.now()

    @api.model
    def _wac_kind_label(self, kind):
        """The message type as people read it ("lembrete" in a Portuguese session)."""
        labels = dict(self.env["wac.template.mapping"]._fields["message_type"]
                      ._description_selection(self.env))
        return (labels.get(kind) or kind or "?").lower()

    @api.model
    def _wac_kill_switch(self):
        return self.env["ir.config_parameter"].sudo().get_param(PARAM_KILL_SWITCH) in (
            "True", "true", "1")

    @api.model
    def _wac_company_blocker(self, company, account=None):
        """Why ``company`` sends nothing automatically right now, or ``None``.

        :param account: the company's account when the caller has it already
        :returns: ``(reason, worth_a_chatter_note)`` or ``None``
        """
        _ = self.env._
        if self._wac_kill_switch():
            return _("Automated WhatsApp messages are stopped for the whole installation "
                     "(kill switch)."), True
        if account is None:
            account = company.sudo().wa_account_id
        if not account:
            return _("%(company)s has no WhatsApp account.", company=company.name), False
        if account.automation_mode == "disabled":
            return _("WhatsApp automation is disabled for %(company)s.",
                     company=company.name), False
        if account.automation_paused:
            return _("WhatsApp automation of %(company)s is paused: %(reason)s",
                     company=company.name, reason=account.automation_pause_reason or "?"), True
        if account.state != "connected":
            return _("The WhatsApp account of %(company)s is not connected (%(state)s).",
                     company=company.name,
                     state=dict(account._fields["state"]._description_selection(self.env)).get(
                         account.state)), True
        return None

    @api.model
    def _wac_tz(self, company, data=None):
        """The time zone messages are written in: the company's (its partner's ``tz``), then
        the organizer's, then UTC. A clinic's customers read the clinic's local time."""
        name = company.partner_id.tz or (data or {}).get("organizer_tz") or "UTC"
        try:
            return pytz.timezone(name)
        except pytz.UnknownTimeZoneError:
            return pytz.utc

    @api.model
    def _wac_local(self, value, tz):
        if isinstance(value, str):
            value = fields.Datetime.from_string(value)
        return pytz.utc.localize(value).astimezone(tz)

    # ------------------------------------------------------------
    # RECIPIENTS
    # ------------------------------------------------------------

    @api.model
    def _wac_recipients(self, event):
        """Attendees who are not internal users (the customers of an appointment)."""
        return self._wac_recipients_of(event)[event]

    @api.model
    def _wac_recipients_of(self, events):
        """``{event: customers}`` for many appointments, with one query for the internal
        users among all their attendees (archived users count: they are still staff)."""
        events = events.sudo()
        # _origin: the form of an appointment being edited holds new records.
        partner_ids = [pid for pid in events.attendee_ids.partner_id._origin.ids if pid]
        internal = set(self.env["res.users"].sudo().with_context(active_test=False).search_fetch(
            [("partner_id", "in", partner_ids), ("share", "=", False)], ["partner_id"],
        ).partner_id.ids) if partner_ids else set()
        return {event: event.attendee_ids.partner_id.filtered(
            lambda p: p._origin.id not in internal) for event in events}

    @api.model
    def _wac_number(self, partner, company):
        """The partner's number usable on WhatsApp, in E.164, or ``None``."""
        # The company partner's country: res.company.country_id is computed from the address.
        region = partner.country_id.code or company.partner_id.country_id.code
        for number in (partner.mobile, partner.phone):
            e164 = wa_phone.normalize(number, region) if number else None
            if e164:
                return e164
        return None

    @api.model
    def _wac_recipient_refusal(self, partner, number, company, pilot, opted_out):
        """Why ``partner`` gets no automated message, or ``None``: the one check (and the one
        wording) of the planner and of the send job.

        :param number: the partner's number in E.164 (:meth:`_wac_number`), or ``None``
        :param set pilot: the account's pilot numbers (digits); empty: everyone
        :param bool opted_out: the partner's number opted out in ``company``
        """
        _ = self.env._
        if not number:
            return _("%(name)s has no mobile number usable on WhatsApp.", name=partner.name)
        if opted_out:
            return _("%(name)s opted out of automated WhatsApp messages: nothing is sent.",
                     name=partner.name)
        if pilot and wa_phone.wa_digits(number) not in pilot:
            return _("%(name)s is not in the pilot allowlist of %(company)s: nothing is sent.",
                     name=partner.name, company=company.name)
        return None

    @api.model
    def _wac_event_data(self, event):
        """What a message says about an appointment, as plain data (a deleted event's
        cancellation is rendered from this snapshot)."""
        event = event.sudo()
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
    # PLANNING (enqueue)
    # ------------------------------------------------------------

    @api.model
    def _wac_plan(self, items, late_ok=False):
        """Decide and enqueue the messages of several events at once.

        A reminder more than :data:`REMINDER_LOOKAHEAD` away is not enqueued yet: the hourly
        planner (:meth:`_wac_cron_plan_reminders`) enqueues it when it comes near. The queue
        then holds hours of reminders, not months of them (a weekly appointment for a year
        would otherwise sit as 52 jobs per customer in the job runner's memory).

        :param items: ``[(event, kinds, partners or None, snapshot or None)]``; ``partners``
            restricts the recipients (attendees added or removed), ``snapshot`` carries a
            deleted event's data
        :param bool late_ok: a reminder whose time has passed goes at once if the appointment
            is still :data:`REMINDER_MIN_LEAD` away (the planner ran late); otherwise it is
            skipped (the confirmation just sent covers it)
        """
        by_company = {}
        for item in items:
            event = item[0]
            by_company.setdefault(event.wa_company_id or self.env.company, []).append(item)
        for company, company_items in by_company.items():
            self._wac_plan_company(company, company_items, late_ok)

    @api.model
    def _wac_plan_company(self, company, items, late_ok=False):
        _ = self.env._
        now = self._wac_now()
        notes, logs = {}, {}
        blocker = self._wac_company_blocker(company)
        if blocker:
            reason, log = blocker
            for event, _kinds, _partners, snapshot in items:
                if not snapshot:
                    notes[event] = reason
                    if log:
                        logs.setdefault(event, []).append(reason)
            self._wac_write_notes(notes, logs)
            return
        if len(items) >= PLAN_IN_JOB_MIN and not self.env.context.get(PLAN_INLINE):
            self._wac_defer_plan(company, items, late_ok)
            return
        account = company.sudo().wa_account_id
        pilot = account._pilot_numbers()
        mapped = set(self.env["wac.template.mapping"].sudo().search_fetch([
            ("company_id", "=", company.id)], ["message_type"]).mapped("message_type"))
        customers = self._wac_recipients_of(self.env["calendar.event"].union(*(
            event for event, _kinds, partners, snapshot in items
            if partners is None and not snapshot)))
        # One event may come twice (attendees added and removed): index by item, not event.
        recipients = [
            partners if partners is not None else (
                customers[event] if not snapshot else self.env["res.partner"])
            for event, _kinds, partners, snapshot in items]
        all_partners = self.env["res.partner"].union(*recipients)
        numbers = {p: self._wac_number(p, company) for p in all_partners}
        keys = {wa_phone.canonical(n) for n in numbers.values() if n}
        opted_out = set(self.env["wac.contact"].sudo().search_fetch([
            ("company_id", "=", company.id), ("phone_key", "in", list(keys)),
            ("opted_out", "=", True)], ["phone_key"]).mapped("phone_key")) if keys else set()
        offset = timedelta(hours=account.reminder_offset_hours or 0)
        tz = self._wac_tz(company)
        summary = {}  # event -> (planned kinds, partners, reminder time)
        jobs = []
        markers = {}  # event -> the start its reminders were planned for (None: not yet)
        for (event, kinds, partners_given, snapshot), partners in zip(items, recipients):
            data = snapshot or self._wac_event_data(event)
            start = fields.Datetime.from_string(data["start"])
            # The planner's runs do not repeat what creating the event already logged.
            lines = logs.setdefault(event, []) if not (snapshot or late_ok) else []
            planned, planned_for, reminder_at = summary.setdefault(event, (set(), set(), []))
            if start <= now:
                if not snapshot:
                    notes[event] = _("The appointment is in the past: no WhatsApp message.")
                continue
            ok_partners = []
            for partner in partners:
                number = numbers.get(partner)
                refusal = self._wac_recipient_refusal(
                    partner, number, company, pilot,
                    opted_out=bool(number) and wa_phone.canonical(number) in opted_out)
                if refusal:
                    lines.append(refusal)
                else:
                    ok_partners.append(partner)
            for kind in kinds:
                if kind not in mapped:
                    if kind == "reminder" and not snapshot and partners_given is None:
                        markers[event] = start
                    if ok_partners:
                        lines.append(_("No approved template is mapped for the %(kind)s "
                                       "message of %(company)s.", kind=self._wac_kind_label(kind),
                                       company=company.name))
                    continue
                eta = None
                if kind == "reminder":
                    eta = self._wac_reminder_eta(account, start, offset, tz)
                    if eta and eta > now + REMINDER_LOOKAHEAD:
                        # Enqueued by the planner when it comes near.
                        if ok_partners:
                            reminder_at.append(eta)
                        if not snapshot:
                            markers[event] = None
                        continue
                    if not snapshot and partners_given is None:
                        markers[event] = start
                    if (not eta or eta <= now) and late_ok \
                            and start - now >= REMINDER_MIN_LEAD:
                        eta = None  # late: at once
                    elif not eta or eta <= now:
                        if ok_partners:
                            lines.append(_("No reminder: the appointment is less than "
                                           "%(hours)s hour(s) away.",
                                           hours=account.reminder_offset_hours))
                        continue
                    reminder_at.append(eta or now)
                for partner in ok_partners:
                    jobs.append(self._wac_send_job(company, data["id"], kind, partner,
                                                   start_key(start), snapshot, eta,
                                                   data["name"]))
                    planned.add(kind)
                    planned_for.add(partner.id)
            if not snapshot and event not in notes:
                notes[event] = None
        self._wac_enqueue_many(jobs)
        notes.update(self._wac_plan_notes(
            {event: summary[event] for event, note in notes.items() if note is None}, tz))
        self._wac_write_notes(notes, {e: lines for e, lines in logs.items() if lines},
                              markers)

    @api.model
    def _wac_defer_plan(self, company, items, late_ok):
        """Hand a large batch to :meth:`_wac_job_plan`; the events say so meanwhile."""
        self.sudo().with_company(company).with_delay(
            channel=CHANNEL, max_retries=JOB_MAX_RETRIES,
            description="WhatsApp: plan the messages of %d appointments of %s" % (
                len(items), company.name),
        )._wac_job_plan(company.id, [
            (event.id, list(kinds), partners.ids if partners is not None else None, snapshot)
            for event, kinds, partners, snapshot in items], late_ok)
        self._wac_write_notes({
            event: self.env._("WhatsApp messages are being planned.")
            for event, _kinds, _partners, snapshot in items if not snapshot}, {})

    def _wac_job_plan(self, company_id, items, late_ok=False):
        """queue_job entry point: plan a batch deferred by :meth:`_wac_plan_company`.

        The appointments are read as they are now. One deleted meanwhile is skipped, and so
        is one archived meanwhile unless the item is its cancellation: the calendar hooks of
        those changes already planned what they call for. A deleted appointment's
        cancellation goes from its snapshot. Identity keys and the send job's own checks keep
        an item planned twice (moved meanwhile) from sending twice.

        :param list items: ``[(event id, kinds, partner ids or None, snapshot or None)]``
        """
        company = self.env["res.company"].browse(company_id).exists()
        if not company:
            return "company deleted"
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
            planned.append((event, tuple(kinds), partners, snapshot))
        self.with_company(company).with_context(**{PLAN_INLINE: True})._wac_plan_company(
            company, planned, late_ok)
        return "%d of %d appointment(s) planned" % (len(planned), len(items))

    @api.model
    def _wac_reminder_eta(self, account, start, offset, tz):
        """When the reminder of an appointment starting at ``start`` (UTC) goes: ``offset``
        before, pushed to the end of the quiet hours; ``None`` if that is not before start."""
        eta = start - offset
        local = self._wac_local(eta, tz)
        if ratelimit.in_quiet_hours(local, account.quiet_hours_start, account.quiet_hours_end):
            local = tz.normalize(ratelimit.quiet_hours_end(
                local, account.quiet_hours_start, account.quiet_hours_end))
            eta = local.astimezone(pytz.utc).replace(tzinfo=None)
        return eta if eta < start else None

    @api.model
    def _wac_plan_notes(self, summary, tz):
        """The automation note of each event: what was planned, for how many attendees, and
        when the reminder goes (short date and time, in ``tz`` and the user's language).

        :param dict summary: ``{event: (planned kinds, partner ids, reminder times)}``
        :rtype: dict
        """
        _ = self.env._
        labels = dict(self.env["wac.template.mapping"]._fields["message_type"]
                      ._description_selection(self.env))
        # One locale for the batch: format_datetime() looks the language up at each call.
        locale = babel_locale_parse(get_lang(self.env).code)
        heads, notes = {}, {}
        for event, (planned, partners, reminders) in summary.items():
            reminder_at = max(reminders, default=None)
            if not planned and not reminder_at:
                notes[event] = _("Nothing planned on WhatsApp for this appointment.")
                continue
            key = (frozenset(planned), len(partners))
            if key not in heads:
                heads[key] = _(
                    "WhatsApp %(kinds)s planned for %(count)s attendee(s).",
                    kinds=", ".join(labels[k].lower() for k in KINDS if k in planned),
                    count=len(partners)) if planned else _("WhatsApp reminder planned.")
            note = heads[key]
            if reminder_at:
                note += " " + _("Reminder on %(when)s.", when=babel.dates.format_datetime(
                    self._wac_local(reminder_at, tz), "short", locale=locale))
            notes[event] = note
        return notes

    @api.model
    def _wac_cron_plan_reminders(self):
        """Hourly: enqueue the reminders that come within :data:`REMINDER_LOOKAHEAD`.

        Events of companies whose automation runs, active, not started, whose reminders were
        not planned for their current start (``wa_reminder_start``). Identity keys keep a
        reminder already waiting from being queued twice.
        """
        now = self._wac_now()
        accounts = self.env["wac.account"].sudo().search([
            ("automation_mode", "!=", "disabled"), ("state", "=", "connected"),
            ("automation_paused", "=", False)])
        if self._wac_kill_switch():
            return 0
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
            [(event, ("reminder",), None, None) for event in events.sudo()], late_ok=True)
        return len(events)

    @api.model
    def _wac_write_notes(self, notes, logs, markers=None):
        """Store the automation note of each event and the start its reminders were planned
        for (``wa_reminder_start``, ``None`` while the planner still has to), with one UPDATE
        and without going through calendar's ``write``; log the per-attendee reasons on the
        chatter."""
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

    @api.model
    def _wac_send_job(self, company, event_id, kind, partner, start, snapshot=None, eta=None,
                      title=""):
        """The one way a send job is built, whoever queues it (planner, follow-up, Retry).

        :param start: the appointment's start as in send keys (:func:`start_key`)
        :param str title: the appointment's name, for the job's description
        :rtype: SendJob
        """
        key = send_key(event_id, kind, partner.id, start)
        return SendJob(company, (company.id, event_id, kind, partner.id, start, snapshot), {
            "channel": CHANNEL, "eta": eta, "identity_key": key,
            "max_retries": JOB_MAX_RETRIES,
            "description": "WhatsApp %s: %s → %s" % (kind, title or "#%d" % event_id,
                                                      partner.name)})

    @api.model
    def _wac_enqueue(self, job):
        """Queue one :class:`SendJob` (no new job while one with its key is waiting)."""
        self.sudo().with_company(job.company).with_delay(**job.options)._wac_job_send(*job.args)

    @api.model
    def _wac_enqueue_many(self, jobs):
        """Queue many :class:`SendJob` with one identity-key lookup and one batch insert.

        Exactly what ``with_delay(identity_key=...)`` does job by job (same ``Job`` values,
        same identity rule: no new job while one with the key is waiting), at a fraction of
        the cost when an appointment batch plans hundreds of messages. Under ``trap_jobs``
        (tests) or ``queue_job__no_delay``, each job goes through ``with_delay``.
        """
        if not jobs:
            return
        if qj_delay.Job is not Job or qj_delay.must_run_without_delay(self.env):
            for job in jobs:
                self._wac_enqueue(job)
            return
        unique = {}
        for job in jobs:
            unique.setdefault(job.options["identity_key"], Job(
                self.sudo().with_company(job.company)._wac_job_send, args=job.args,
                **job.options))
        QueueJob = self.env["queue.job"].sudo()
        waiting = set(QueueJob.search_fetch([
            ("identity_key", "in", list(unique)),
            ("state", "in", ("wait_dependencies", "pending", "enqueued"))],
            ["identity_key"]).mapped("identity_key"))
        QueueJob.with_context(_job_edit_sentinel=QueueJob.EDIT_SENTINEL,
                              tracking_disable=True).create([
            job._store_values(create=True) for key, job in unique.items() if key not in waiting])

    @api.model
    def _wac_drop_jobs(self, events, kinds=None, partner_ids=None):
        """Cancel the queued, not yet started send jobs of these events (optionally only some
        message types or attendees). A job already running re-checks its relevance anyway.

        Two kinds of job are not simply dropped. The job of a message whose attempt is open
        (Meta's answer was lost) is kept: it is the one that settles it, and the follow-ups
        wait for that outcome. A message that a dropped job left *pending* (Meta throttled or
        refused it for now) is withdrawn, so that no row waits for a job that will never come.
        """
        if not events:
            return 0
        domain = [("state", "in", ("pending", "enqueued", "wait_dependencies")),
                  ("method_name", "=", "_wac_job_send"), ("model_name", "=", self._name)]
        patterns = ["wac:%d:%%" % event_id for event_id in events.ids]
        domain += ["|"] * (len(patterns) - 1) + [("identity_key", "=like", p) for p in patterns]
        jobs = self.env["queue.job"].sudo().search(domain)
        doomed = jobs.filtered(lambda j: self._wac_key_matches(
            j.identity_key, kinds, partner_ids))
        if not doomed:
            return 0
        waiting = self.env["wac.message"].sudo().search([
            ("company_id", "in", events.sudo().wa_company_id.ids),
            ("wa_send_key", "in", doomed.mapped("identity_key")),
            ("wamid", "=", False), ("status", "=", "pending")])
        settling = set(waiting.filtered("wa_attempt_open").mapped("wa_send_key"))
        doomed = doomed.filtered(lambda j: j.identity_key not in settling)
        waiting.filtered(lambda m: not m.wa_attempt_open)._wac_withdraw(self.env._(
            "The appointment changed before this message could be sent."))
        doomed.button_cancelled()
        return len(doomed)

    @staticmethod
    def _wac_key_matches(key, kinds, partner_ids):
        parsed = parse_send_key(key)
        if not parsed:
            return False
        if kinds and parsed.kind not in kinds:
            return False
        return not partner_ids or parsed.partner_id in partner_ids

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

        self._wac_plan([(event, kinds(event), None, None) for event in events])

    @api.model
    def _wac_events_moved(self, events):
        """The start changed: the customers who heard of the appointment, or may be hearing of
        it right now (a message in flight), get the reschedule, which waits for that message's
        outcome (:meth:`_wac_follow_up`); the others get the confirmation of the new time. The
        reminder moves either way."""
        self._wac_drop_jobs(events, kinds=("confirmation", "reminder", "reschedule"))
        customers = self._wac_recipients_of(events)
        heard = self.env["wac.message"]._wac_heard(
            events.sudo().wa_company_id.ids, events.ids,
            self.env["res.partner"].union(*customers.values()).ids)
        told = heard.informed | heard.unsettled
        items = []
        for event in events:
            partners = customers[event]
            informed = partners.filtered(lambda p, e=event: (e.id, p.id) in told)
            if informed:
                items.append((event, ("reschedule",), informed, None))
            if partners - informed:
                items.append((event, ("confirmation",), partners - informed, None))
            items.append((event, ("reminder",), None, None))
        self._wac_plan(items)

    @api.model
    def _wac_events_cancelled(self, events, snapshots=None):
        """Archived or deleted: pending messages are dropped, and the customers who were
        told about the appointment get the cancellation (the job checks that)."""
        self._wac_drop_jobs(events, kinds=("confirmation", "reminder", "reschedule"))
        snapshots = snapshots or {}
        customers = self._wac_recipients_of(events)
        self._wac_plan([(event, ("cancellation",), customers[event], snapshots.get(event.id))
                        for event in events if customers[event]])

    @api.model
    def _wac_attendees_changed(self, event, added, removed):
        if removed:
            self._wac_drop_jobs(event, partner_ids=set(removed.ids),
                                kinds=("confirmation", "reminder", "reschedule"))
        items = []
        if added:
            items.append((event, ("confirmation", "reminder"), added, None))
        if removed:
            items.append((event, ("cancellation",), removed, None))
        self._wac_plan(items)

    # ------------------------------------------------------------
    # RENDERING
    # ------------------------------------------------------------

    @api.model
    def _wac_render_values(self, data, partner, company, lang, sources=None):
        """Every parameter source of the mapping's fixed list, as text.

        Dates and times are in the company's time zone (:meth:`_wac_tz`) and the template's
        language: ``pt_BR`` gives "terça-feira, 3 de fevereiro de 2026" and "14:30".

        :param sources: the sources a mapping uses, when not all: the company's address (the
            location of an appointment without one) is only formatted when it is needed
        """
        tz = self._wac_tz(company, data)
        locale = _babel_locale(lang)
        env_lang = self.with_context(lang=lang).env
        if data.get("allday") and data.get("start_date"):
            day = fields.Date.from_string(data["start_date"])
            time_text = env_lang._("all day")
        else:
            local = self._wac_local(data["start"], tz)
            day = local.date()
            time_text = babel.dates.format_time(local, format="short", locale=locale)
        location = data.get("location") or (
            company.partner_id._display_address(without_company=True)
            if sources is None or "location" in sources else "")
        name = (partner.name or "").strip()
        return {
            "attendee_name": name,
            "attendee_first_name": name.split()[0] if name else "",
            "appointment_date": babel.dates.format_date(day, format="full", locale=locale),
            "appointment_time": time_text,
            "appointment_weekday": babel.dates.format_date(day, "EEEE", locale=locale),
            "location": location,
            "organizer": data.get("organizer") or "",
            "company_name": company.name or "",
            "appointment_title": data.get("name") or "",
        }

    @api.model
    def _wac_sample_values(self, mapping):
        """Parameter values of a sample appointment (tomorrow 14:30), for the Check button."""
        company = mapping.company_id
        tz = self._wac_tz(company)
        local = datetime.combine(date.today() + timedelta(days=1), datetime.min.time()).replace(
            hour=14, minute=30)
        start = tz.localize(local).astimezone(pytz.utc).replace(tzinfo=None)
        data = {"id": 0, "name": self.env._("Consultation"),
                "start": fields.Datetime.to_string(start), "location": "",
                "organizer": self.env.user.name}
        partner = self.env["res.partner"].new({"name": "Maria Silva"})
        return self._wac_values_for(mapping, data, partner)[0]

    @api.model
    def _wac_values_for(self, mapping, data, partner):
        """The sanitised parameter values of a send and the template spec."""
        spec = mapping.template_id._wac_spec()
        rendered = self._wac_render_values(data, partner, mapping.company_id,
                                           mapping.template_id.language,
                                           sources=set(mapping.param_ids.mapped("source")))
        limits = {p.key: p.limit for p in spec.params}
        values = {}
        for line in mapping.param_ids:
            raw = line.fixed_value if line.source == "fixed_text" else rendered.get(line.source)
            values[line.key] = tp.sanitize_param(raw, limit=limits.get(line.key,
                                                                       tp.BODY_PARAM_LIMIT))
        return spec.fit(values), spec

    @api.model
    def _wac_mapping(self, company, kind, lang):
        """The mapping for a message type in the attendee's language, else in the same
        language family, else the company's language, else the first one."""
        mappings = self.env["wac.template.mapping"].sudo().search_fetch([
            ("company_id", "=", company.id), ("message_type", "=", kind)],
            ["language", "template_id", "company_id", "message_type"])
        if not mappings:
            return mappings
        for wanted in (lang, company.partner_id.lang):
            if not wanted:
                continue
            exact = mappings.filtered(lambda m, w=wanted: m.language == w)
            if exact:
                return exact[0]
            family = mappings.filtered(
                lambda m, w=wanted: (m.language or "").split("_")[0] == w.split("_")[0])
            if family:
                return family[0]
        return mappings[0]

    @api.model
    def _wac_build_payload(self, mapping, data, partner, to, key, account):
        """The exact JSON body of the send, or raise ``ValueError`` with what is wrong."""
        problems = mapping._wac_problems(for_send=True)
        if problems:
            raise ValueError("; ".join(problems))
        values, spec = self._wac_values_for(mapping, data, partner)
        payloads = {}
        for button in spec.quick_replies:
            action = tp.button_action(button.text, account.reply_confirm_words,
                                      account.reply_cancel_words)
            if not action and mapping.template_id.library_type:
                action = (tp.CONFIRM, tp.CANCEL)[button.index] if button.index < 2 else None
            if action:
                payloads[button.index] = tp.make_payload(action, data["id"])
        components = spec.build_components(values, payloads)
        payload = GraphClient.build_template_payload(
            to, mapping.template_id.name, mapping.template_id.language, components,
            biz_opaque_callback_data=key)
        return payload, spec.hydrate(values)

    # ------------------------------------------------------------
    # THE JOB
    # ------------------------------------------------------------

    def _wac_job_send(self, company_id, event_id, kind, partner_id, start, snapshot=None):
        """Send one appointment message, at most once (see the module docstring).

        :param int company_id: the sending company
        :param int event_id: the appointment (may be deleted: ``snapshot`` then has its data)
        :param str kind: confirmation, reminder, reschedule or cancellation
        :param int partner_id: the attendee
        :param str start: the appointment's start when the job was enqueued (:func:`start_key`)
        :param dict snapshot: the data of a deleted appointment
        :returns: what happened, for the job's result
        :raises RetryableJobError: Meta or a limit says later
        """
        account = self.env["wac.account"].sudo().search_fetch(
            [("company_id", "=", company_id)], SEND_FIELDS["wac.account"], limit=1)
        company = account.company_id or self.env["res.company"].sudo().browse(
            company_id).exists()
        if not company:
            return "company deleted"
        return self.sudo().with_company(company)._wac_send_one(
            company, account, event_id, kind, partner_id, start, snapshot)

    def _wac_send_one(self, company, account, event_id, kind, partner_id, start, snapshot):
        key = send_key(event_id, kind, partner_id, start)
        message = self.env["wac.message"].search(
            [("company_id", "=", company.id), ("wa_send_key", "=", key)], limit=1)
        if message.wamid:
            return "already sent (%s)" % message.wamid
        if message.status == "dry_run" and not message.wa_retry_confirmed:
            return "already done as a dry run"
        event, partner = self._wac_send_records(company, event_id, partner_id)
        if message.wa_attempt_open and not message.wa_retry_confirmed:
            return self._wac_settle_open_attempt(message, event)
        if message.status == "failed" and not message.wa_retry_confirmed:
            return "failed earlier: %s" % (message.error_title or "?")

        blocker = self._wac_company_blocker(company, account)
        if blocker:
            return self._wac_skip(message, event, partner, kind, blocker[0])
        data = snapshot or (self._wac_event_data(event) if event else None)
        reason = self._wac_irrelevant(kind, event, data, partner, start) or \
            self._wac_follow_up(kind, company, data, partner, key)
        if reason:
            return self._wac_skip(message, event, partner, kind, reason)

        number = self._wac_number(partner, company)
        digits = wa_phone.wa_digits(number) if number else None
        pilot = account._pilot_numbers()
        contact = self.env["wac.contact"].search_fetch([
            ("company_id", "=", company.id), ("phone_key", "=", wa_phone.canonical(digits))],
            SEND_FIELDS["wac.contact"], limit=1) if digits else self.env["wac.contact"]
        reason = self._wac_recipient_refusal(partner, number, company, pilot,
                                             opted_out=contact.opted_out)
        if reason:
            return self._wac_skip(message, event, partner, kind, reason)

        mapping = self._wac_mapping(company, kind, partner.lang)
        if not mapping:
            return self._wac_skip(message, event, partner, kind, self.env._(
                "No approved template is mapped for the %(kind)s message.",
                kind=self._wac_kind_label(kind)))
        vals = {
            "company_id": company.id, "account_id": account.id, "direction": "out",
            "source": "api", "message_type": "template", "res_model": "calendar.event",
            "res_id": event_id, "wa_send_key": key, "wa_kind": kind, "wa_partner_id": partner.id,
            "wa_start_key": start, "wa_snapshot": json.dumps(snapshot) if snapshot else False,
            "wa_template_id": mapping.template_id.id, "recipient_input": digits,
            "biz_opaque_callback_data": key, "message_at": fields.Datetime.now(),
            "contact_id": contact.id or False,
        }
        if contact:
            vals["partner_id"] = contact.partner_id.id  # what the related field would read
        try:
            payload, body = self._wac_build_payload(mapping, data, partner, digits, key, account)
        except ValueError as error:
            return self._wac_fail(message, vals, event, partner, kind, self.env._(
                "The template mapping cannot be sent: %s", error))
        vals.update(payload=json.dumps(payload, ensure_ascii=False, indent=1), body=body)
        if (mapping.template_id.name == HELLO_WORLD and account.automation_mode == "enabled"
                and digits not in pilot):
            return self._wac_fail(message, vals, event, partner, kind, self.env._(
                "hello_world is Meta's sample template: it only goes to pilot numbers or in a "
                "dry run."))

        if account.automation_mode == "dry_run":
            vals.update(status="dry_run", wa_retry_confirmed=False, error_title=False,
                        error_details=False)
            if message:
                message.write(vals)
            else:
                message = message.create(vals)
            self._wac_log(event, self.env._(
                "WhatsApp %(kind)s prepared for %(name)s (%(number)s) with %(template)s; dry "
                "run, not sent.", kind=self._wac_kind_label(kind), name=partner.name, number=number,
                template=mapping.template_id.display_name))
            return "dry run"

        if contact and account.recipient_daily_cap:
            since = fields.Datetime.now() - timedelta(days=1)
            count = self.env["wac.message"].search_count([
                ("company_id", "=", company.id), ("contact_id", "=", contact.id),
                ("direction", "=", "out"), ("source", "=", "api"),
                ("create_date", ">=", since),
                ("status", "not in", ("failed", "dry_run", "withdrawn")),
                ("id", "!=", message.id or 0)])
            if count >= account.recipient_daily_cap:
                return self._wac_fail(message, vals, event, partner, kind, self.env._(
                    "Daily cap reached: %(count)s automated messages to %(number)s in 24 "
                    "hours.", count=count, number=number))
        if kind == "reminder":
            self._wac_check_quiet_hours(account, company, data)
        client = account._wac_client()
        # The intent and the outcome are two short transactions of one side cursor, each
        # committed at once (see the module docstring).
        with self.env.registry.cursor() as side:
            message_id, pace = self._wac_reserve_and_open(side, message, vals, account,
                                                          company, digits, partner)
            left = time.monotonic()
            try:
                result = client.send_message(account.phone_number_id, payload)
            except wa_errors.WaCloudError as error:
                refusal = error
            else:
                refusal = None
                self._wac_close_attempt(message_id, {
                    "wamid": result.wamid, "status": result.message_status
                    if result.message_status in ("accepted", "held_for_quality_assessment")
                    else "accepted",
                    "recipient_input": result.input or digits, "recipient_wa_id": result.wa_id,
                    "wa_attempt_open": False, "status_at": fields.Datetime.now(),
                }, cr=side)
                if pace and left - pace.due > RESTAMP_TOLERANCE:
                    try:
                        restamp_slot(side, pace.key, pace.slot, pace.slot + left - pace.due)
                    except psycopg2.Error:
                        # Only the window's precision is lost; the message is recorded.
                        side.rollback()
                        _logger.warning("Could not restamp the slot of %s", key, exc_info=True)
        if refusal:
            return self._wac_handle_error(refusal, message_id, message.wa_attempts, account,
                                          event, partner, kind, digits)
        self._wac_log(event, self.env._(
            "WhatsApp %(kind)s sent to %(name)s (%(number)s) with %(template)s.",
            kind=self._wac_kind_label(kind), name=partner.name, number=number,
            template=mapping.template_id.display_name))
        return "sent %s" % result.wamid

    def _wac_send_records(self, company, event_id, partner_id):
        """The appointment (archived ones included) and the attendee of a send, empty when
        deleted, with what the send reads of them and of the company prefetched in narrow
        queries (:data:`SEND_FIELDS`)."""
        event = self.env["calendar.event"].with_context(active_test=False).search_fetch(
            [("id", "=", event_id)], SEND_FIELDS["calendar.event"])
        partner = self.env["res.partner"].with_context(active_test=False).search_fetch(
            [("id", "=", partner_id)], SEND_FIELDS["res.partner"])
        company.fetch(["name", "partner_id"])
        company.partner_id.fetch(["tz", "lang", "country_id"])
        (partner.country_id | company.partner_id.country_id).fetch(["code"])
        if event:
            event.user_id.fetch(["partner_id"])
            event.user_id.partner_id.fetch(["name", "tz"])
            event.attendee_ids.fetch(["partner_id", "state"])
        return event, partner

    # -- relevance ---------------------------------------------------------------------------

    @api.model
    def _wac_irrelevant(self, kind, event, data, partner, start):
        """Why this message no longer makes sense, or ``None``."""
        _ = self.env._
        if not partner:
            return _("The attendee was deleted.")
        if not data:
            return _("The appointment was deleted.")
        now = self._wac_now()
        if start != start_key(data["start"]):
            return _("The appointment's time changed after this message was planned.")
        if fields.Datetime.from_string(data["start"]) <= now:
            return _("The appointment has already started.")
        attendee_partners = self._wac_recipients(event) if event and event.active else None
        if kind == "cancellation":
            if event and event.active and partner in attendee_partners:
                return _("The appointment is active again.")
            return None
        if not event:
            return _("The appointment was deleted.")
        if not event.active:
            return _("The appointment was cancelled.")
        if partner not in attendee_partners:
            return _("%(name)s is no longer an attendee.", name=partner.name)
        attendee = event.attendee_ids.filtered(lambda a: a.partner_id == partner)[:1]
        if kind == "reminder" and attendee.state == "declined":
            return _("%(name)s declined the appointment.", name=partner.name)
        return None

    @api.model
    def _wac_follow_up(self, kind, company, data, partner, key):
        """Whether a reschedule or a cancellation goes: it follows what the customer heard.

        While an earlier message to the customer about this appointment is in flight (its
        attempt open, or its job running) the outcome is not known: wait for it, or for its
        *uncertain* verdict, which counts as heard (better a needless word than a customer at
        an appointment that no longer exists). Then a cancellation goes only to a customer
        who heard of the appointment. A reschedule to one who never did becomes the
        confirmation of the new time.

        :returns: why this message does not go, or ``None``
        :raises RetryableJobError: an earlier message is still in flight
        """
        if kind not in FOLLOW_UPS:
            return None
        heard = self.env["wac.message"]._wac_heard(company.ids, [data["id"]], [partner.id],
                                                   exclude_key=key)
        pair = (data["id"], partner.id)
        if pair in heard.unsettled:
            raise RetryableJobError(
                "Waiting for the outcome of an earlier message to this attendee",
                seconds=FOLLOW_UP_WAIT, ignore_retry=True)
        if pair in heard.informed:
            return None
        if kind == "cancellation":
            return self.env._("Nothing was sent to %(name)s about it, so no cancellation "
                              "either.", name=partner.name)
        self._wac_enqueue(self._wac_send_job(company, data["id"], "confirmation", partner,
                                             start_key(data["start"]), title=data["name"]))
        return self.env._("%(name)s never heard of the earlier time: the confirmation of the "
                          "new time goes instead.", name=partner.name)

    @api.model
    def _wac_check_quiet_hours(self, account, company, data):
        """Reminders wait for the end of the company's quiet hours (local time)."""
        if account.quiet_hours_start == account.quiet_hours_end:
            return
        tz = self._wac_tz(company, data)
        local_now = self._wac_local(self._wac_now(), tz)
        if not ratelimit.in_quiet_hours(local_now, account.quiet_hours_start,
                                        account.quiet_hours_end):
            return
        end = tz.normalize(ratelimit.quiet_hours_end(
            local_now, account.quiet_hours_start, account.quiet_hours_end))
        raise RetryableJobError(
            "Quiet hours of %s until %s" % (company.name, end.strftime("%H:%M")),
            seconds=max(1, math.ceil((end - local_now).total_seconds())), ignore_retry=True)

    @api.model
    def _wac_limits(self, account, company, digits):
        """The rate limits of one send: the company's cap in every second (a window, so slots
        missed while the workers were busy are caught up), the recipient's spacing (a GCRA)."""
        limits = []
        if account.rate_limit_mps > 0:
            limits.append(LimitSpec("company:%d" % company.id, account.rate_limit_mps,
                                    company_id=company.id, window=1.0 / RATE_SAFETY))
        if account.recipient_spacing_s > 0:
            limits.append(LimitSpec("pair:%d:%s" % (company.id, wa_phone.canonical(digits)),
                                    1.0 / account.recipient_spacing_s, company_id=company.id))
        return limits

    def _wac_reserve_and_open(self, cr, message, vals, account, company, digits, partner):
        """Reserve a slot under the rate limits, then commit the intent before calling Meta.

        Both happen on ``cr``, a cursor of the send's own, never the job's. The slot is
        reserved in ``wac.rate.bucket``; when it is at most :data:`MAX_SLEEP` away the job
        sleeps until it, else the job is postponed without consuming a retry. The intent (the
        row, its payload, ``wa_attempt_open``) is committed right before the HTTP call: in the
        same transaction as the reservation when no wait is needed, in a second one after the
        sleep otherwise, so that a worker dying while it sleeps never leaves an attempt that
        looks uncertain.

        :returns: ``(message id, pace)``: the :class:`Pace` of the send under the company's
            window, ``None`` without one
        """
        limits = self._wac_limits(account, company, digits)
        reserved = reserve_slot(cr, limits, MAX_SLEEP, commit=False)
        if not reserved.allowed:
            cr.rollback()
            raise RetryableJobError("Rate limit: next slot in %.1f s" % reserved.wait,
                                    seconds=max(1, math.ceil(reserved.wait)), ignore_retry=True)
        due = time.monotonic() + reserved.wait  # the slot, on this process's clock
        if reserved.wait > SAME_TRANSACTION_WAIT:
            cr.commit()  # pylint: disable=invalid-commit
            time.sleep(max(0.0, due - time.monotonic()))
        message_id = self._wac_write_intent(cr, message, vals, account, digits, partner)
        cr.commit()  # pylint: disable=invalid-commit
        if due > time.monotonic():
            time.sleep(due - time.monotonic())
        self.env["wac.message"].invalidate_model()
        windows = [limit.key for limit in limits if limit.window]
        return message_id, Pace(windows[0], reserved.slot, due) if windows else None

    def _wac_write_intent(self, cr, message, vals, account, digits, partner):
        """Write the intent row on ``cr`` (committed by the caller); return its id."""
        env = self.env(cr=cr)
        Message = env["wac.message"].sudo()
        if message:
            try:
                with cr.savepoint():
                    cr.execute("SELECT wamid, wa_attempt_open, wa_retry_confirmed FROM "
                               "wac_message WHERE id = %s FOR UPDATE NOWAIT", (message.id,))
                    wamid, attempt_open, retry_confirmed = cr.fetchone()
            except psycopg2.errors.LockNotAvailable:
                raise RetryableJobError("Another worker is sending this message",
                                        seconds=10, ignore_retry=True) from None
            if wamid or (attempt_open and not retry_confirmed):
                raise RetryableJobError("Another attempt of this message is under way",
                                        seconds=10, ignore_retry=True)
        if not vals.get("contact_id"):
            # The first message to this number: its contact is the attendee written to.
            contacts = env["wac.contact"].sudo()._wac_resolve(
                account.with_env(env), [(digits, None, partner.name)],
                partners={digits: partner.with_env(env)})
            vals = dict(vals, contact_id=contacts[digits].id)
        vals = dict(vals, status="pending", wa_attempt_open=True, wa_uncertain=False,
                    wa_attempt_at=fields.Datetime.now(), wa_retry_confirmed=False,
                    error_code=False, error_title=False, error_details=False)
        if message:
            Message.browse(message.id).write(vals)
            return message.id
        try:
            # The account and the contact were found by this company: no need for create()
            # to read them again to check it (a tenth of the intent's cost).
            return Message.with_context(wac_company_checked=True).create(vals).id
        except psycopg2.IntegrityError:
            # No savepoint (two round trips per send): this transaction is lost, and the
            # caller's cursor rolls it back with the slot reserved in it.
            raise RetryableJobError("Another worker created this message",
                                    seconds=10, ignore_retry=True) from None

    def _wac_close_attempt(self, message_id, vals, cr=None):
        """Commit the outcome of an attempt right after Meta's answer, on ``cr`` (the send's
        side cursor) or on a cursor of its own.

        Writing the ``wamid`` links the statuses that arrived before it (``wac.message``'s
        ``write``).
        """
        if cr is None:
            with self.env.registry.cursor() as cr:
                return self._wac_close_attempt(message_id, vals, cr)
        message = self.env(cr=cr)["wac.message"].sudo().browse(message_id)
        # What write() and the status linking read: not the whole row with its payload.
        message.fetch(["direction", "company_id", "wamid", "status"])
        message.write(vals)
        cr.commit()  # pylint: disable=invalid-commit
        # This transaction's cache must not keep what the other one replaced.
        self.env["wac.message"].invalidate_model()
        self.env["wac.message.status"].invalidate_model()

    def _wac_settle_open_attempt(self, message, event):
        """An attempt was left open (crash or lost answer): adopt the wamid of a status
        webhook carrying our send key, or wait, or give the decision to a person
        (``wac.message._wac_try_settle``)."""
        verdict = message._wac_try_settle(event)
        if verdict is None:
            raise RetryableJobError(
                "Waiting for Meta's status of an attempt whose answer was lost",
                seconds=max(1, min(30, math.ceil(message._wac_grace() - message._wac_age()))),
                ignore_retry=True)
        return verdict

    def _wac_fail(self, message, vals, event, partner, kind, reason):
        """Record a message that will not be sent without a person's action."""
        vals = dict(vals, status="failed", error_code=False,
                    error_title=reason[:200], error_details=reason, wa_attempt_open=False,
                    wa_retry_confirmed=False)
        if message:
            message.write(vals)
        else:
            message.create(vals)
        self._wac_log(event, self.env._("WhatsApp %(kind)s to %(name)s not sent: %(reason)s",
                                        kind=self._wac_kind_label(kind), name=partner.name,
                                        reason=reason))
        return "failed: %s" % reason

    def _wac_skip(self, message, event, partner, kind, reason):
        """Nothing is sent and nothing needs doing: say why on the appointment, and withdraw
        the message if an earlier attempt left it *pending*."""
        if message.status == "pending" and not (message.wamid or message.wa_attempt_open):
            message._wac_withdraw(reason)
        self._wac_log(event, self.env._(
            "WhatsApp %(kind)s to %(name)s not sent: %(reason)s",
            kind=self._wac_kind_label(kind), name=partner.name or "?", reason=reason))
        return "skipped: %s" % reason

    def _wac_log(self, event, text, activity=False):
        if not event:
            _logger.info("WhatsApp (deleted appointment): %s", text)
            return
        event = event.sudo()
        if activity and event.user_id:
            # A calendar event has no activities of its own: notify the organizer instead.
            event.message_post(body=text, subtype_xmlid="mail.mt_note",
                               partner_ids=event.user_id.partner_id.ids)
        else:
            # Written by the automation (OdooBot), not by whoever enqueued the job; an
            # internal note, so no sender address to compute (email_from=False).
            event._message_log(body=text, author_id=self.env["ir.model.data"]._xmlid_to_res_id(
                "base.partner_root"), email_from=False)

    # -- errors ------------------------------------------------------------------------------

    def _wac_handle_error(self, error, message_id, attempts, account, event, partner, kind,
                          digits):
        """Meta refused or could not be reached: retry, fail or pause, by error class."""
        details = {"error_code": error.code or False, "error_title": (error.title or "")[:200],
                   "error_details": str(error)}
        company = account.company_id
        if isinstance(error, wa_errors.TransportError):
            # Meta may have accepted it: leave the attempt open (see the module docstring).
            raise RetryableJobError("Graph unreachable or answer lost: %s" % error,
                                    seconds=30, ignore_retry=True)
        if isinstance(error, wa_errors.ThrottlingError):
            wait = float(error.retry_after or 1)
            if error.code == 131056:
                self.env["wac.rate.bucket"]._wac_push_back(
                    "pair:%d:%s" % (company.id, wa_phone.canonical(digits)),
                    max(wait, account.recipient_spacing_s or 6), company.id)
            else:
                self.env["wac.rate.bucket"]._wac_push_back(
                    "company:%d" % company.id, wait, company.id)
            self._wac_close_attempt(message_id, dict(details, wa_attempt_open=False,
                                                     status="pending"))
            raise RetryableJobError("Meta throttled: %s" % error,
                                    seconds=max(1, math.ceil(wait)), ignore_retry=True)
        if isinstance(error, wa_errors.RetryableError):
            attempts += 1
            if attempts < MAX_ATTEMPTS:
                self._wac_close_attempt(message_id, dict(
                    details, wa_attempt_open=False, status="pending", wa_attempts=attempts))
                raise RetryableJobError(
                    "Meta temporarily refused (attempt %d/%d): %s" % (
                        attempts, MAX_ATTEMPTS, error),
                    seconds=error.retry_after or min(900, 10 * 3 ** (attempts - 1)))
            reason = self.env._("Meta kept refusing after %(count)s attempts: %(error)s",
                                count=attempts, error=str(error))
            self._wac_close_attempt(message_id, dict(
                details, wa_attempt_open=False, status="failed", wa_attempts=attempts,
                error_details=reason))
            self._wac_log(event, reason, activity=True)
            return "failed: %s" % error
        self._wac_close_attempt(message_id, dict(details, wa_attempt_open=False,
                                                 status="failed"))
        if isinstance(error, wa_errors.TenantBlockingError):
            reason = self.env._("Meta blocks sending for %(company)s: %(error)s",
                                company=company.name, error=account._wac_error_advice(error))
            vals = {"last_error": reason}
            if isinstance(error, wa_errors.AuthError):
                vals.update(state="needs_reauth", state_reason=str(error))
            account._wac_pause(reason, **vals)
            self._wac_log(event, self.env._(
                "WhatsApp %(kind)s to %(name)s not sent, automation paused: %(reason)s",
                kind=self._wac_kind_label(kind), name=partner.name, reason=reason))
            return "paused: %s" % error
        self._wac_log(event, self.env._(
            "WhatsApp %(kind)s to %(name)s refused by Meta: %(error)s",
            kind=self._wac_kind_label(kind), name=partner.name, error=str(error)))
        return "failed: %s" % error

    # ------------------------------------------------------------
    # MANUAL FLOW
    # ------------------------------------------------------------

    @api.model
    def _wac_manual_link(self, event, partner):
        """``https://wa.me/<number>?text=<message>`` for one attendee, from the company's
        editable text, in the company's language and time zone. Works in every mode."""
        company = event.wa_company_id or self.env.company
        number = self._wac_number(partner, company)
        if not number:
            return None
        account = company.sudo().wa_account_id
        lang = company.partner_id.lang or self.env.lang or "en_US"
        values = self._wac_render_values(self._wac_event_data(event), partner, company, lang)
        keys = {"name": "attendee_name", "first_name": "attendee_first_name",
                "date": "appointment_date", "time": "appointment_time",
                "weekday": "appointment_weekday", "location": "location",
                "organizer": "organizer", "company": "company_name",
                "title": "appointment_title"}
        text = tp.render_text(
            (account.manual_message_text if account else None)
            or self.env["wac.account"]._wac_default_manual_text(lang),
            # Values on one line each; the company's text keeps its own line breaks.
            {key: tp.sanitize_param(values[source], fallback="")
             for key, source in keys.items()})
        return tp.wa_me_link(number, text)

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
        Event = self.env["calendar.event"].sudo()
        parsed = tp.parse_payload(message.button_payload)
        event, partner = Event, self.env["res.partner"]
        if parsed:
            action, event_id = parsed
            event = Event.browse(event_id).exists()
        else:
            action = tp.parse_reply(message.body, account.reply_confirm_words,
                                    account.reply_cancel_words)
            if not action:
                return None
            if message.context_wamid:
                origin = self.env["wac.message"].sudo().search([
                    ("company_id", "=", message.company_id.id),
                    ("wamid", "=", message.context_wamid),
                    ("res_model", "=", "calendar.event")], limit=1)
                if origin:
                    event = Event.browse(origin.res_id).exists()
                    partner = origin.wa_partner_id
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
        self._wac_apply_attendance(event, attendee, action, message)
        return event, action

    @api.model
    def _wac_next_appointment(self, company, contact):
        recent = self.env["wac.message"].sudo().search_count([
            ("company_id", "=", company.id), ("contact_id", "=", contact.id),
            ("direction", "=", "out"), ("source", "in", ("api", "app")),
            ("message_at", ">=", fields.Datetime.now() - timedelta(days=3))])
        if not recent:
            return self.env["calendar.event"]
        partners = contact.partner_id
        if contact.phone_key:
            partners |= self.env["res.partner"].sudo().search(
                [("wa_phone_key", "=", contact.phone_key)])
        return self.env["calendar.event"].sudo().search([
            ("wa_company_id", "=", company.id), ("start", ">", fields.Datetime.now()),
            ("attendee_ids.partner_id", "in", partners.ids)], order="start", limit=1)

    @api.model
    def _wac_apply_attendance(self, event, attendee, action, message):
        _ = self.env._
        when = format_datetime(self.env, event.start, tz=self._wac_tz(event.wa_company_id).zone,
                               dt_format="short")
        answer = message.body or message.button_payload or "?"
        if action == tp.CONFIRM:
            if attendee.state != "accepted":
                attendee.do_accept()
            text = _("%(name)s confirmed the appointment of %(when)s on WhatsApp (\"%(answer)s\").",
                     name=attendee.partner_id.name, when=when, answer=answer)
        else:
            if attendee.state != "declined":
                attendee.do_decline()
            self._wac_drop_jobs(event, kinds=("reminder",),
                                partner_ids={attendee.partner_id.id})
            text = _("%(name)s cancelled the appointment of %(when)s on WhatsApp (\"%(answer)s\").",
                     name=attendee.partner_id.name, when=when, answer=answer)
        # The organizer is notified (inbox): a cancellation usually calls for another time.
        event.message_post(body=text, subtype_xmlid="mail.mt_note",
                           partner_ids=event.user_id.partner_id.ids)
