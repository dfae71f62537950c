"""The send job's work: one appointment message, at most once.

``wac.send._wac_job_send`` (the queue_job entry point) hands each job to
:class:`WacSendSender`, which checks first that the message still makes sense, then renders,
records and sends it, and turns Meta's errors into retries, failures or a paused company.

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

from odoo import api, fields, models

from odoo.addons.queue_job.exception import RetryableJobError

from ..const import FOLLOW_UP_KINDS, HELLO_WORLD
from ..tools.wa_cloud import errors as wa_errors
from ..tools.wa_cloud import phone as wa_phone
from ..tools.wa_cloud import ratelimit
from ..tools.wa_cloud.send_key import send_key, start_key
from .res_company import wac_local
from .wac_rate_limit import read_committed

_logger = logging.getLogger(__name__)

#: How long a follow-up waits before it looks again at a message still in flight.
FOLLOW_UP_WAIT = 15
#: Meta errors retried this many times before the message is marked failed.
MAX_ATTEMPTS = 6
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


class WacSendSender(models.AbstractModel):
    """Run one send job: relevance, rendering, intent and outcome, Meta's errors."""

    _name = "wac.send.sender"
    _description = "WhatsApp Coexistence appointment message sender"

    @api.model
    def _wac_send(self, company_id, event_id, kind, partner_id, start, snapshot=None):
        """Send one appointment message (the body of ``wac.send._wac_job_send``)."""
        account = self.env["wac.account"].sudo().search_fetch(
            [("company_id", "=", company_id)], SEND_FIELDS["wac.account"], limit=1)
        company = account.company_id or self.env["res.company"].sudo().browse(
            company_id).exists()
        if not company:
            return "company deleted"
        return self.sudo().with_company(company)._wac_send_one(
            company, account, event_id, kind, partner_id, start, snapshot)

    def _wac_jobs(self):
        """``wac.send`` in this environment: the clock, the labels, the chatter, the jobs."""
        return self.env["wac.send"]

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
        blocker = self._wac_jobs()._wac_company_blocker(company, account)
        if blocker and blocker.holds:
            return self._wac_hold(out, blocker.reason)
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
        blocker = self._wac_jobs()._wac_company_blocker(out.company, out.account)
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
                              kind=self.env["wac.send"]._wac_kind_label(out.kind))
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
        refusal = self.env["wac.rate.bucket"]._wac_daily_cap_refusal(
            out.account, out.contact, out.number, out.message)
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
            # The number this attempt goes out from: a retry after a number change is sent,
            # and recorded, on the new one.
            "phone_number_id": out.account.phone_number_id,
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
        jobs = self._wac_jobs()
        jobs._wac_log(out.event, self.env._(
            "WhatsApp %(kind)s prepared for %(name)s (%(number)s) with %(template)s; dry "
            "run, not sent.", kind=jobs._wac_kind_label(out.kind), name=out.partner.name,
            number=out.number, template=out.mapping.template_id.display_name))
        return "dry run"

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
            pace, message_id = self._wac_commit_intent(side, out, vals, limits)
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
        jobs = self._wac_jobs()
        jobs._wac_log(out.event, self.env._(
            "WhatsApp %(kind)s sent to %(name)s (%(number)s) with %(template)s.",
            kind=jobs._wac_kind_label(out.kind), name=out.partner.name, number=out.number,
            template=out.mapping.template_id.display_name))
        return "sent %s" % result.wamid

    def _wac_commit_intent(self, side, out, vals, limits):
        """Write the intent of a send and reserve its rate slot, and commit both on ``side``
        before Meta is called (the crash window); return ``(pace, message id)``.

        The intent is written first and the slot reserved last, when one is free at once:
        the company's bucket row is then locked only until the commit, not while the intent
        writes its contact, message and conversation, which would make the company's
        workers wait for each other. When the company's window is full, that intent is
        rolled back, the slot is reserved first (waiting for it, up to a second) and the
        intent written after it: no committed intent ever waits for its slot, so a worker
        that dies in that wait leaves no open attempt behind.

        The side transaction is READ COMMITTED from its start, as the slot's needs: a bucket
        row updated by another worker is then waited for, not a serialization failure.
        """
        Bucket = self.env["wac.rate.bucket"]
        Message = self.env["wac.message"]
        read_committed(side)
        message_id = Message._wac_write_intent(side, out.message, vals, out.account,
                                               out.digits, out.partner)
        pace = Bucket._wac_take_free_slot(side, limits)
        if pace is None:
            pace = Bucket._wac_take_slot(side, limits)
            message_id = Message._wac_write_intent(side, out.message, vals, out.account,
                                                   out.digits, out.partner)
        side.commit()  # pylint: disable=invalid-commit
        return pace, message_id

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
        if fields.Datetime.from_string(data["start"]) <= self._wac_jobs()._wac_now():
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
        jobs = self._wac_jobs()
        jobs._wac_enqueue(jobs._wac_send_job(company, data["id"], "confirmation", partner,
                                             start_key(data["start"]), title=data["name"]))
        return self.env._("%(name)s never heard of the earlier time: the confirmation of the "
                          "new time goes instead.", name=partner.name)

    @api.model
    def _wac_check_quiet_hours(self, account, company, data):
        """Reminders wait for the end of the company's quiet hours (local time)."""
        if account.quiet_hours_start == account.quiet_hours_end:
            return
        tz = company._wac_tz(data.get("organizer_tz"))
        local_now = wac_local(self._wac_jobs()._wac_now(), tz)
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

    def _wac_hold(self, out, reason):
        """The company is paused or the kill switch is on: a message still relevant is held
        (``wac_message_hold.py`` releases it); one that no longer is, is skipped."""
        out.data = out.snapshot or (out.event._wac_data() if out.event else None)
        irrelevant = self._wac_irrelevant(out.kind, out.event, out.data, out.partner, out.start)
        if irrelevant:
            return self._wac_skip(out, irrelevant)
        self.env["wac.message"]._wac_hold_row(out, reason)
        jobs = self._wac_jobs()
        jobs._wac_log(out.event, self.env._(
            "WhatsApp %(kind)s to %(name)s held: %(reason)s",
            kind=jobs._wac_kind_label(out.kind), name=out.partner.name, reason=reason))
        return "held: %s" % reason

    def _wac_fail(self, out, vals, reason):
        """Record a message that will not be sent without a person's action."""
        vals = dict(vals, status="failed", error_code=False,
                    error_title=reason[:200], error_details=reason, wa_attempt_open=False,
                    wa_retry_confirmed=False)
        if out.message:
            out.message.write(vals)
        else:
            out.message.create(vals)
        self._wac_log_not_sent(out, reason)
        return "failed: %s" % reason

    def _wac_skip(self, out, reason):
        """Nothing is sent and nothing needs doing: say why on the appointment, and withdraw
        the message if an earlier attempt left it *pending*."""
        message = out.message
        if message.status == "pending" and not (message.wamid or message.wa_attempt_open):
            message._wac_withdraw(reason)
        elif message.status == "held":
            message._wac_drop(reason)
        self._wac_log_not_sent(out, reason)
        return "skipped: %s" % reason

    def _wac_log_not_sent(self, out, reason):
        """Say on the appointment that this message is not sent, and why."""
        jobs = self._wac_jobs()
        jobs._wac_log(out.event, self.env._(
            "WhatsApp %(kind)s to %(name)s not sent: %(reason)s",
            kind=jobs._wac_kind_label(out.kind), name=out.partner.name or "?", reason=reason))
