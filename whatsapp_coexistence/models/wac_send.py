"""The send job: one appointment message, at most once.

``wac.send`` is the queue_job face of the appointment messages: it builds, queues and drops
send jobs, and runs them (``_wac_job_send``). It also keeps the stable entry points of the
planning job and of the hourly reminder cron, whose work is ``wac.send.planner``'s. Who gets
what and when is decided there; this model only sends what was planned, after checking first
that it still makes sense.

Exactly once, and the crash window
----------------------------------
Each send has a *send key* (``tools/wa_cloud/send_key.py``): the job's ``identity_key``, the
``wac.message`` row's ``wa_send_key`` (unique per company) and the ``biz_opaque_callback_data``
Meta echoes in every status webhook. The row is written in short transactions of its own, on
a side cursor, never in the job's (``wac.message._wac_write_intent``, ``_wac_close_attempt``):

1. *intent*: before the HTTP call the row is committed with ``wa_attempt_open`` and the exact
   payload;
2. *result*: right after Meta's answer the ``wamid`` (or the error) is committed and the attempt
   closed.

A rerun of the job reads the row first: a ``wamid`` means sent, stop. An attempt still *open*
means the worker died (or the connection broke) after the intent, so Meta may or may not have
accepted the message. The job then never resends blindly: it looks for a status webhook
carrying the send key and adopts its ``wamid``; without one it waits (``RetryableJobError``)
for a grace period (``whatsapp_coexistence.uncertain_grace_seconds``, default 300 s); after
it, the row is marked failed as *uncertain* and a person checks the phone or WhatsApp Manager
and presses Retry. Errors Meta *answered* (any JSON error) close the attempt: nothing was sent,
so retrying is safe. A timeout, a dropped connection or a 5xx without a body leaves it open, as
a crash does.

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
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

from odoo import api, fields, models

from odoo.addons.queue_job import delay as qj_delay
from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job

from ..const import CHANNEL_WHATSAPP, FOLLOW_UP_KINDS, PARAM_KILL_SWITCH
from ..tools.wa_cloud import errors as wa_errors
from ..tools.wa_cloud import phone as wa_phone
from ..tools.wa_cloud import ratelimit
from ..tools.wa_cloud.send_key import parse_send_key, send_key, start_key
from .res_company import wac_local
from .wac_template import HELLO_WORLD

_logger = logging.getLogger(__name__)

#: How long a follow-up waits before it looks again at a message still in flight.
FOLLOW_UP_WAIT = 15
#: Meta errors retried this many times before the message is marked failed.
MAX_ATTEMPTS = 6
#: queue_job retries; Meta errors stop earlier (MAX_ATTEMPTS) and waits use ignore_retry.
JOB_MAX_RETRIES = 20
#: What the send job reads of each record, fetched in one narrow query per model: whole rows
#: (a partner has some 70 columns) cost much more. A field missing here is still read, lazily.
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


class SendJob(NamedTuple):
    """One send job before it is queued: the sending company, the arguments of
    :meth:`WacSend._wac_job_send` and the queue_job options (see ``_wac_send_job``)."""

    company: models.BaseModel
    args: tuple
    options: dict


@dataclass
class Outgoing:
    """One send as the job works it out: who, what, and the row that records it."""

    company: models.BaseModel
    account: models.BaseModel
    kind: str
    key: str
    start: str
    snapshot: dict | None
    message: models.BaseModel
    event: models.BaseModel
    partner: models.BaseModel
    data: dict | None = None
    number: str | None = None
    digits: str | None = None
    contact: models.BaseModel | None = None
    pilot: set | None = None
    mapping: models.BaseModel | None = None


class WacSend(models.AbstractModel):
    """The appointment send jobs (no table): build, queue, drop and run them."""

    _name = "wac.send"
    _description = "WhatsApp Coexistence appointment messages"

    # ------------------------------------------------------------
    # CONTEXT: clock, switches, labels
    # ------------------------------------------------------------

    @api.model
    def _wac_now(self):
        """Now (UTC, naive): the one clock of the planner and of the send job."""
        return fields.Datetime.now()

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

    # ------------------------------------------------------------
    # JOBS: build, queue, drop
    # ------------------------------------------------------------

    @api.model
    def _wac_send_job(self, company, event_id, kind, partner, start, snapshot=None, eta=None,
                      title=""):
        """The one way a send job is built, whoever queues it (planner, follow-up, Retry).

        :param start: the appointment's start as in send keys (``start_key``)
        :param str title: the appointment's name, for the job's description
        :rtype: SendJob
        """
        key = send_key(event_id, kind, partner.id, start)
        return SendJob(company, (company.id, event_id, kind, partner.id, start, snapshot), {
            "channel": CHANNEL_WHATSAPP, "eta": eta, "identity_key": key,
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
        the cost when an appointment batch plans hundreds of messages.
        """
        if not jobs:
            return
        # queue_job has no public batch enqueue: this reuses what Job.store() itself writes
        # (_store_values, under EDIT_SENTINEL). Wherever delay.Job is not queue_job's own
        # class (trap_jobs() replaces it) or jobs must run at once, the public with_delay
        # path is taken instead, so whoever replaced it sees every job.
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
    # ENTRY POINTS (queue jobs and cron: their names are stored in queue.job and ir.cron)
    # ------------------------------------------------------------

    def _wac_job_plan(self, company_id, items, late_ok=False):
        """queue_job entry point: plan a batch deferred by the planner
        (``wac.send.planner._wac_plan_deferred``)."""
        company = self.env["res.company"].browse(company_id).exists()
        if not company:
            return "company deleted"
        return self.env["wac.send.planner"]._wac_plan_deferred(company, items, late_ok)

    @api.model
    def _wac_cron_plan_reminders(self):
        """Cron entry point: ``wac.send.planner._wac_cron_plan_reminders``."""
        return self.env["wac.send.planner"]._wac_cron_plan_reminders()

    def _wac_job_send(self, company_id, event_id, kind, partner_id, start, snapshot=None):
        """Send one appointment message, at most once (see the module docstring).

        :param int company_id: the sending company
        :param int event_id: the appointment (may be deleted: ``snapshot`` then has its data)
        :param str kind: confirmation, reminder, reschedule or cancellation
        :param int partner_id: the attendee
        :param str start: the appointment's start when the job was enqueued (``start_key``)
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

    # ------------------------------------------------------------
    # THE SEND
    # ------------------------------------------------------------

    def _wac_send_one(self, company, account, event_id, kind, partner_id, start, snapshot):
        """Send, skip or settle one message; the row of an earlier run decides first."""
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
        out = Outgoing(company, account, kind, key, start, snapshot, message, event, partner)
        reason = self._wac_why_not(out)
        if reason:
            return self._wac_skip(out, reason)
        return self._wac_send_now(out)

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

    def _wac_why_not(self, out):
        """Why this message is not sent (and nothing needs doing), or ``None``; fills in
        ``out`` (appointment data, number, contact, mapping) along the way."""
        blocker = self._wac_company_blocker(out.company, out.account)
        if blocker:
            return blocker[0]
        out.data = out.snapshot or (out.event._wac_data() if out.event else None)
        reason = self._wac_irrelevant(out.kind, out.event, out.data, out.partner, out.start) \
            or self._wac_follow_up(out.kind, out.company, out.data, out.partner, out.key)
        if reason:
            return reason
        out.number = out.partner._wac_number(out.company)
        out.digits = wa_phone.wa_digits(out.number) if out.number else None
        out.pilot = out.account._pilot_numbers()
        out.contact = self.env["wac.contact"].search_fetch([
            ("company_id", "=", out.company.id),
            ("phone_key", "=", wa_phone.canonical(out.digits))],
            SEND_FIELDS["wac.contact"], limit=1) if out.digits else self.env["wac.contact"]
        reason = out.partner._wac_recipient_refusal(out.number, out.company, out.pilot,
                                                    opted_out=out.contact.opted_out)
        if reason:
            return reason
        out.mapping = self.env["wac.template.mapping"]._wac_for(
            out.company, out.kind, out.partner.lang)
        if not out.mapping:
            return self.env._("No approved template is mapped for the %(kind)s message.",
                              kind=self._wac_kind_label(out.kind))
        return None

    def _wac_send_now(self, out):
        """Render the message and send it (or record the dry run, or why it fails)."""
        vals = self._wac_message_vals(out)
        try:
            payload, body = out.mapping._wac_build_payload(
                out.data, out.partner, out.digits, out.key, out.account)
        except ValueError as error:
            return self._wac_fail(out, vals, self.env._(
                "The template mapping cannot be sent: %s", error))
        vals.update(payload=json.dumps(payload, ensure_ascii=False, indent=1), body=body)
        if (out.mapping.template_id.name == HELLO_WORLD
                and out.account.automation_mode == "enabled" and out.digits not in out.pilot):
            return self._wac_fail(out, vals, self.env._(
                "hello_world is Meta's sample template: it only goes to pilot numbers or in a "
                "dry run."))
        if out.account.automation_mode == "dry_run":
            return self._wac_dry_run(out, vals)
        refusal = self._wac_daily_cap_refusal(out)
        if refusal:
            return self._wac_fail(out, vals, refusal)
        if out.kind == "reminder":
            self._wac_check_quiet_hours(out.account, out.company, out.data)
        return self._wac_deliver(out, vals, payload)

    def _wac_message_vals(self, out):
        """The ``wac.message`` row of a send, before its payload."""
        vals = {
            "company_id": out.company.id, "account_id": out.account.id, "direction": "out",
            "source": "api", "message_type": "template", "res_model": "calendar.event",
            "res_id": out.data["id"], "wa_send_key": out.key, "wa_kind": out.kind,
            "wa_partner_id": out.partner.id, "wa_start_key": out.start,
            "wa_snapshot": json.dumps(out.snapshot) if out.snapshot else False,
            "wa_template_id": out.mapping.template_id.id, "recipient_input": out.digits,
            "biz_opaque_callback_data": out.key, "message_at": fields.Datetime.now(),
            "contact_id": out.contact.id or False,
        }
        if out.contact:
            vals["partner_id"] = out.contact.partner_id.id  # what the related field would read
        return vals

    def _wac_dry_run(self, out, vals):
        """Record the message as it would have been sent, and say so on the appointment."""
        vals.update(status="dry_run", wa_retry_confirmed=False, error_title=False,
                    error_details=False)
        if out.message:
            out.message.write(vals)
        else:
            out.message = out.message.create(vals)
        self._wac_log(out.event, self.env._(
            "WhatsApp %(kind)s prepared for %(name)s (%(number)s) with %(template)s; dry "
            "run, not sent.", kind=self._wac_kind_label(out.kind), name=out.partner.name,
            number=out.number, template=out.mapping.template_id.display_name))
        return "dry run"

    def _wac_daily_cap_refusal(self, out):
        """Why the recipient's daily cap stops this message, or ``None``."""
        if not (out.contact and out.account.recipient_daily_cap):
            return None
        since = fields.Datetime.now() - timedelta(days=1)
        count = self.env["wac.message"].search_count([
            ("company_id", "=", out.company.id), ("contact_id", "=", out.contact.id),
            ("direction", "=", "out"), ("source", "=", "api"),
            ("create_date", ">=", since),
            ("status", "not in", ("failed", "dry_run", "withdrawn")),
            ("id", "!=", out.message.id or 0)])
        if count < out.account.recipient_daily_cap:
            return None
        return self.env._("Daily cap reached: %(count)s automated messages to %(number)s in 24 "
                          "hours.", count=count, number=out.number)

    def _wac_deliver(self, out, vals, payload):
        """Take a slot under the rate limits, commit the intent, call Meta, commit the outcome.

        The intent and the outcome are short transactions of a side cursor of their own,
        each committed at once (see the module docstring); the job's transaction never holds
        them, so a rollback of the job cannot forget that Meta was called.
        """
        client = out.account._wac_client()
        Bucket = self.env["wac.rate.bucket"]
        Message = self.env["wac.message"]
        limits = Bucket._wac_limits(out.account, out.digits)
        with self.env.registry.cursor() as side:
            pace = Bucket._wac_take_slot(side, limits)
            message_id = Message._wac_write_intent(side, out.message, vals, out.account,
                                                   out.digits, out.partner)
            # The intent is committed on the side cursor before Meta is called (crash window).
            side.commit()  # pylint: disable=invalid-commit
            if pace.due > time.monotonic():
                time.sleep(pace.due - time.monotonic())
            Message.invalidate_model()
            left = time.monotonic()
            try:
                result = client.send_message(out.account.phone_number_id, payload)
            except wa_errors.WaCloudError as error:
                refusal = error
            else:
                refusal = None
                Message._wac_close_attempt(message_id, {
                    "wamid": result.wamid, "status": result.message_status
                    if result.message_status in ("accepted", "held_for_quality_assessment")
                    else "accepted",
                    "recipient_input": result.input or out.digits,
                    "recipient_wa_id": result.wa_id,
                    "wa_attempt_open": False, "status_at": fields.Datetime.now(),
                }, cr=side)
                Bucket._wac_restamp(side, pace, left)
        if refusal:
            return self._wac_handle_error(out, refusal, message_id)
        self._wac_log(out.event, self.env._(
            "WhatsApp %(kind)s sent to %(name)s (%(number)s) with %(template)s.",
            kind=self._wac_kind_label(out.kind), name=out.partner.name, number=out.number,
            template=out.mapping.template_id.display_name))
        return "sent %s" % result.wamid

    # ------------------------------------------------------------
    # RELEVANCE
    # ------------------------------------------------------------

    @api.model
    def _wac_irrelevant(self, kind, event, data, partner, start):
        """Why this message no longer makes sense, or ``None``."""
        _ = self.env._
        if not partner:
            return _("The attendee was deleted.")
        if not data:
            return _("The appointment was deleted.")
        if start != start_key(data["start"]):
            return _("The appointment's time changed after this message was planned.")
        if fields.Datetime.from_string(data["start"]) <= self._wac_now():
            return _("The appointment has already started.")
        attendee_partners = event._wac_customers()[event] if event and event.active else None
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
        if kind not in FOLLOW_UP_KINDS:
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
        tz = company._wac_tz(data.get("organizer_tz"))
        local_now = wac_local(self._wac_now(), tz)
        if not ratelimit.in_quiet_hours(local_now, account.quiet_hours_start,
                                        account.quiet_hours_end):
            return
        end = tz.normalize(ratelimit.quiet_hours_end(
            local_now, account.quiet_hours_start, account.quiet_hours_end))
        raise RetryableJobError(
            "Quiet hours of %s until %s" % (company.name, end.strftime("%H:%M")),
            seconds=max(1, math.ceil((end - local_now).total_seconds())), ignore_retry=True)

    # ------------------------------------------------------------
    # OUTCOMES
    # ------------------------------------------------------------

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

    def _wac_fail(self, out, vals, reason):
        """Record a message that will not be sent without a person's action."""
        vals = dict(vals, status="failed", error_code=False,
                    error_title=reason[:200], error_details=reason, wa_attempt_open=False,
                    wa_retry_confirmed=False)
        if out.message:
            out.message.write(vals)
        else:
            out.message.create(vals)
        self._wac_log(out.event, self.env._(
            "WhatsApp %(kind)s to %(name)s not sent: %(reason)s",
            kind=self._wac_kind_label(out.kind), name=out.partner.name, reason=reason))
        return "failed: %s" % reason

    def _wac_skip(self, out, reason):
        """Nothing is sent and nothing needs doing: say why on the appointment, and withdraw
        the message if an earlier attempt left it *pending*."""
        message = out.message
        if message.status == "pending" and not (message.wamid or message.wa_attempt_open):
            message._wac_withdraw(reason)
        self._wac_log(out.event, self.env._(
            "WhatsApp %(kind)s to %(name)s not sent: %(reason)s",
            kind=self._wac_kind_label(out.kind), name=out.partner.name or "?", reason=reason))
        return "skipped: %s" % reason

    def _wac_log(self, event, text, activity=False):
        """Say ``text`` on the appointment's chatter (to its organizer's inbox with
        ``activity``); a deleted appointment's only in the server log."""
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

    # ------------------------------------------------------------
    # META'S ERRORS
    # ------------------------------------------------------------

    def _wac_handle_error(self, out, error, message_id):
        """Meta refused or could not be reached: retry, fail or pause, by error class."""
        details = {"error_code": error.code or False, "error_title": (error.title or "")[:200],
                   "error_details": str(error), "wa_attempt_open": False}
        if isinstance(error, wa_errors.TransportError):
            # Meta may have accepted it: leave the attempt open (see the module docstring).
            raise RetryableJobError("Graph unreachable or answer lost: %s" % error,
                                    seconds=30, ignore_retry=True)
        if isinstance(error, wa_errors.ThrottlingError):
            self._wac_throttled(out, error, message_id, details)
        if isinstance(error, wa_errors.RetryableError):
            return self._wac_retry_or_fail(out, error, message_id, details)
        self.env["wac.message"]._wac_close_attempt(message_id, dict(details, status="failed"))
        if isinstance(error, wa_errors.TenantBlockingError):
            return self._wac_tenant_blocked(out, error)
        self._wac_log(out.event, self.env._(
            "WhatsApp %(kind)s to %(name)s refused by Meta: %(error)s",
            kind=self._wac_kind_label(out.kind), name=out.partner.name, error=str(error)))
        return "failed: %s" % error

    def _wac_throttled(self, out, error, message_id, details):
        """Meta said to slow down: every worker backs off (the company's or the pair's
        bucket), the message waits as *pending*, and the job comes back after the wait."""
        wait = float(error.retry_after or 1)
        Bucket = self.env["wac.rate.bucket"]
        company_id = out.company.id
        if error.code == 131056:
            Bucket._wac_push_back(Bucket._wac_pair_key(company_id, out.digits),
                                  max(wait, out.account.recipient_spacing_s or 6), company_id)
        else:
            Bucket._wac_push_back("company:%d" % company_id, wait, company_id)
        self.env["wac.message"]._wac_close_attempt(message_id, dict(details, status="pending"))
        raise RetryableJobError("Meta throttled: %s" % error,
                                seconds=max(1, math.ceil(wait)), ignore_retry=True)

    def _wac_retry_or_fail(self, out, error, message_id, details):
        """A temporary refusal: retried with a growing delay, failed after
        :data:`MAX_ATTEMPTS` (the organizer is notified)."""
        attempts = out.message.wa_attempts + 1
        Message = self.env["wac.message"]
        if attempts < MAX_ATTEMPTS:
            Message._wac_close_attempt(message_id, dict(
                details, status="pending", wa_attempts=attempts))
            raise RetryableJobError(
                "Meta temporarily refused (attempt %d/%d): %s" % (attempts, MAX_ATTEMPTS, error),
                seconds=error.retry_after or min(900, 10 * 3 ** (attempts - 1)))
        reason = self.env._("Meta kept refusing after %(count)s attempts: %(error)s",
                            count=attempts, error=str(error))
        Message._wac_close_attempt(message_id, dict(
            details, status="failed", wa_attempts=attempts, error_details=reason))
        self._wac_log(out.event, reason, activity=True)
        return "failed: %s" % error

    def _wac_tenant_blocked(self, out, error):
        """Meta blocks the whole company (token, account, payment): automation is paused."""
        account = out.account
        reason = self.env._("Meta blocks sending for %(company)s: %(error)s",
                            company=out.company.name, error=account._wac_error_advice(error))
        vals = {"last_error": reason}
        if isinstance(error, wa_errors.AuthError):
            vals.update(state="needs_reauth", state_reason=str(error))
        account._wac_pause(reason, **vals)
        self._wac_log(out.event, self.env._(
            "WhatsApp %(kind)s to %(name)s not sent, automation paused: %(reason)s",
            kind=self._wac_kind_label(out.kind), name=out.partner.name, reason=reason))
        return "paused: %s" % error
