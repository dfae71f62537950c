import json
import logging
from datetime import timedelta
from typing import NamedTuple

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.queue_job.exception import RetryableJobError

from ..const import PARAM_UNCERTAIN_GRACE
from ..tools.wa_cloud.send_key import parse_send_key
from .wac_template_mapping import MESSAGE_TYPES

_logger = logging.getLogger(__name__)

DEFAULT_GRACE = 300
#: The queue_job states of a job that will still run (or is running).
LIVE_JOB_STATES = ("wait_dependencies", "pending", "enqueued", "started")
#: The settling cron leaves alone a message this young: its job may be between two commits.
SETTLE_MIN_AGE = timedelta(minutes=1)


class Heard(NamedTuple):
    """What the customers of appointments heard from us, as ``(event id, partner id)`` pairs.

    ``informed``: a message reached Meta (a ``wamid``), was a dry run, or is *uncertain*
    (Meta may have sent it). ``unsettled``: a message whose outcome is not known yet (its
    attempt open, or its job running).
    """

    informed: frozenset
    unsettled: frozenset


class WacMessage(models.Model):
    """Appointment messages on ``wac.message``: send keys, payloads, attempts, retry, replies.

    The send pipeline itself is ``wac.send``; this extension only adds what a message row must
    remember for it (see ``wac_send`` for the crash window these fields close).
    """

    _inherit = "wac.message"

    payload = fields.Text(readonly=True, help="The exact JSON sent to Meta (or that a dry run "
                          "would have sent). It holds no credential.")
    # No index of its own: every lookup also filters on the company, and send_key_uniq's
    # (company_id, wa_send_key) index serves it (one index less to update on every send).
    wa_send_key = fields.Char("Send key", readonly=True, copy=False,
                              help="Event, message type, attendee and start time: one send per "
                              "key, ever. Sent to Meta as biz_opaque_callback_data.")
    wa_kind = fields.Selection(MESSAGE_TYPES, string="Appointment message", readonly=True)
    wa_partner_id = fields.Many2one("res.partner", string="Attendee", readonly=True,
                                    index=True)
    wa_template_id = fields.Many2one("wac.template", string="Template", readonly=True)
    wa_start_key = fields.Char(readonly=True)
    wa_snapshot = fields.Text(readonly=True, help="Data of a deleted appointment.")
    wa_attempt_open = fields.Boolean(
        "Outcome unknown", readonly=True, copy=False,
        help="The send was committed as an intent and Meta's answer is not recorded yet.")
    wa_attempt_at = fields.Datetime("Last attempt", readonly=True, copy=False)
    wa_attempts = fields.Integer("Failed attempts", readonly=True, copy=False)
    wa_uncertain = fields.Boolean(
        "Uncertain", readonly=True, copy=False,
        help="Meta's answer was lost and no status came: Meta may have sent it. Follow-ups "
        "(reschedule, cancellation) treat it as sent.")
    wa_retry_confirmed = fields.Boolean(readonly=True, copy=False)
    wa_can_retry = fields.Boolean(compute="_compute_wa_can_retry")

    _sql_constraints = [
        ("send_key_uniq", "unique(company_id, wa_send_key)",
         "An appointment message is sent once."),
    ]

    @api.depends("status", "wamid", "wa_send_key", "source")
    def _compute_wa_can_retry(self):
        for message in self:
            message.wa_can_retry = bool(
                message.source == "api" and message.status == "failed" and not message.wamid
                and message.wa_send_key and message.res_model == "calendar.event")

    def _wac_on_inbound(self):
        """Replies to appointment messages update the attendee (button or numbered answer)."""
        result = super()._wac_on_inbound()
        Attendee = self.env["calendar.attendee"]
        for message in self:
            if message.direction == "in" and message.source == "customer" and (
                    message.body or message.button_payload):
                Attendee._wac_apply_reply(message)
        return result

    def action_wac_retry(self):
        """Send again a message that failed without reaching Meta, or whose outcome was
        uncertain, after a person checked it was not delivered. The retry gets Meta's full
        count of attempts again."""
        if not self.env.user.has_group("whatsapp_coexistence.whatsapp_coexistence_group_manager"):
            raise UserError(self.env._("Only WhatsApp managers can send a message again."))
        self.check_access("read")
        Send = self.env["wac.send"]
        for message in self:
            if not message.wa_can_retry:
                raise UserError(self.env._(
                    "Only failed appointment messages that Meta did not accept can be sent "
                    "again."))
            key = parse_send_key(message.wa_send_key)
            message.sudo().write({"wa_retry_confirmed": True, "wa_attempts": 0})
            self.env["wac.audit.log"]._wac_log(message, "retry", self.env._("Retry"),
                                               old=message.status)
            snapshot = json.loads(message.wa_snapshot) if message.wa_snapshot else None
            event = self.env["calendar.event"].sudo().with_context(active_test=False).browse(
                key.event_id).exists()
            Send._wac_enqueue(Send._wac_send_job(
                message.company_id, key.event_id, key.kind, message.wa_partner_id, key.start,
                snapshot, title=event.name or (snapshot or {}).get("name", "")))
        return True

    def _wac_withdraw(self, reason):
        """These messages will not be sent (what they were about changed): they leave the
        *pending* state for good, with the reason."""
        if self:
            self.sudo().write({"status": "withdrawn", "wa_attempt_open": False,
                               "error_code": False, "error_title": reason[:200],
                               "error_details": reason})

    @api.model
    def _wac_heard(self, company_ids, event_ids, partner_ids, exclude_key=None):
        """What the customers ``partner_ids`` heard about the appointments ``event_ids``.

        :param exclude_key: the send key asking (its own row and job do not count)
        :rtype: Heard
        """
        messages = self.sudo().search_fetch([
            ("company_id", "in", company_ids), ("res_model", "=", "calendar.event"),
            ("res_id", "in", event_ids), ("source", "=", "api"),
            ("wa_partner_id", "in", partner_ids), ("wa_send_key", "!=", exclude_key or False),
        ], ["res_id", "wa_partner_id", "wamid", "status", "wa_uncertain", "wa_attempt_open"])
        informed, unsettled = set(), set()
        for message in messages:
            pair = (message.res_id, message.wa_partner_id.id)
            if message.wamid or message.status == "dry_run" or message.wa_uncertain:
                informed.add(pair)
            elif message.wa_attempt_open:
                unsettled.add(pair)
        # A job that started may be about to send: the runner committed "started" before
        # the job read anything, so a change committed since cannot have been seen by it.
        running = self.env["queue.job"].sudo().search_fetch([
            ("state", "=", "started"), ("method_name", "=", "_wac_job_send"),
            ("model_name", "=", "wac.send"), ("identity_key", "!=", exclude_key or False)],
            ["identity_key"])
        events, partners = set(event_ids), set(partner_ids)
        for key in map(parse_send_key, running.mapped("identity_key")):
            if key and key.event_id in events and key.partner_id in partners:
                unsettled.add((key.event_id, key.partner_id))
        return Heard(frozenset(informed), frozenset(unsettled))

    @api.model
    def _wac_cron_attach_late_statuses(self):
        """Link status webhooks that raced with the commit of their message's ``wamid``.

        A status ingested while the send job was committing the wamid finds no message and
        stays an orphan (each transaction saw the other's work as not yet done); this sweeps
        them up.
        """
        self.env.cr.execute("""
            SELECT DISTINCT m.id
              FROM wac_message_status s
              JOIN wac_message m ON m.company_id = s.company_id AND m.wamid = s.wamid
             WHERE s.message_id IS NULL
             LIMIT 5000
        """)
        ids = [row[0] for row in self.env.cr.fetchall()]
        self.browse(ids)._wac_attach_orphan_statuses()
        return len(ids)

    # ------------------------------------------------------------
    # INTENT AND OUTCOME
    # ------------------------------------------------------------

    @api.model
    def _wac_write_intent(self, cr, message, vals, account, digits, partner):
        """Write the intent row of a send on ``cr`` (committed by the caller): *pending*,
        its attempt open, its payload. Return its id.

        :param message: the row of an earlier attempt, or an empty record
        :raises RetryableJobError: another worker holds or created this send's row
        """
        env = self.env(cr=cr)
        if message:
            self._wac_lock_for_attempt(cr, message.id)
        if not vals.get("contact_id"):
            # The first message to this number: its contact is the attendee written to. The
            # account as the job read it: what the contact needs of it (the company, its
            # country) is in the job's cache; on ``cr`` the account, the company, its partner
            # and the country would each be read again, whole rows.
            contacts = env["wac.contact"].sudo()._wac_resolve(
                account, [(digits, None, partner.name)], partners={digits: partner})
            vals = dict(vals, contact_id=contacts[digits].id)
        vals = dict(vals, status="pending", wa_attempt_open=True, wa_uncertain=False,
                    wa_attempt_at=fields.Datetime.now(), wa_retry_confirmed=False,
                    error_code=False, error_title=False, error_details=False)
        Message = env["wac.message"].sudo()
        if message:
            Message.browse(message.id).write(vals)
            return message.id
        try:
            return Message.create(vals).id
        except psycopg2.IntegrityError:
            # No savepoint (two round trips per send): this transaction is lost, and the
            # caller's cursor rolls it back with the slot reserved in it.
            raise RetryableJobError("Another worker created this message",
                                    seconds=10, ignore_retry=True) from None

    @api.model
    def _wac_lock_for_attempt(self, cr, message_id):
        """Lock the row of an earlier attempt on ``cr``; a job rerun while another one sends
        (or has sent) the same message waits instead."""
        try:
            with cr.savepoint():
                cr.execute("SELECT wamid, wa_attempt_open, wa_retry_confirmed FROM "
                           "wac_message WHERE id = %s FOR UPDATE NOWAIT", (message_id,))
                wamid, attempt_open, retry_confirmed = cr.fetchone()
        except psycopg2.errors.LockNotAvailable:
            raise RetryableJobError("Another worker is sending this message",
                                    seconds=10, ignore_retry=True) from None
        if wamid or (attempt_open and not retry_confirmed):
            raise RetryableJobError("Another attempt of this message is under way",
                                    seconds=10, ignore_retry=True)

    @api.model
    def _wac_close_attempt(self, message_id, vals, cr=None):
        """Commit the outcome of an attempt right after Meta's answer, on ``cr`` (the send's
        side cursor) or on a cursor of its own: never in the job's transaction, which may
        still roll back (see ``wac_send``).

        Writing the ``wamid`` links the statuses that arrived before it (``write``).
        """
        if cr is None:
            with self.env.registry.cursor() as cr:
                return self._wac_close_attempt(message_id, vals, cr)
        message = self.env(cr=cr)["wac.message"].sudo().browse(message_id)
        # What write() and the status linking read: not the whole row with its payload.
        message.fetch(["direction", "company_id", "wamid", "status"])
        message.write(vals)
        # The send's side cursor (or one of its own), never the job's: the outcome survives
        # a rollback of the job.
        cr.commit()  # pylint: disable=invalid-commit
        # This transaction's cache must not keep what the other one replaced.
        self.env["wac.message"].invalidate_model()
        self.env["wac.message.status"].invalidate_model()

    # ------------------------------------------------------------
    # SETTLING ATTEMPTS
    # ------------------------------------------------------------

    @api.model
    def _wac_grace(self):
        """Seconds an open attempt waits for Meta's status before it is *uncertain*."""
        return int(self.env["ir.config_parameter"].sudo().get_param(PARAM_UNCERTAIN_GRACE)
                   or DEFAULT_GRACE)

    def _wac_age(self):
        """Seconds since this message's last attempt."""
        self.ensure_one()
        now = fields.Datetime.now()
        return (now - (self.wa_attempt_at or now)).total_seconds()

    def _wac_try_settle(self, event):
        """Settle this open attempt if its outcome can be known now: what its send job does
        on a rerun, and what the settling cron does when the job is gone.

        A status webhook carrying the send key proves Meta accepted it: its ``wamid`` is
        adopted. Without one, after the grace period, the message is *uncertain* and the
        organizer is notified: a person checks the chat and presses Retry if it was not sent.

        :param event: the appointment (empty when deleted), for the chatter
        :returns: what happened, or ``None`` while the grace period runs
        """
        self.ensure_one()
        Send = self.env["wac.send"]
        status = self.env["wac.message.status"].sudo().search([
            ("company_id", "=", self.company_id.id),
            ("biz_opaque_callback_data", "=", self.wa_send_key)], order="id", limit=1)
        if status:
            self._wac_close_attempt(self.id, {
                "wamid": status.wamid, "wa_attempt_open": False, "status": "accepted",
                "recipient_wa_id": status.recipient_id or self.recipient_wa_id,
                "error_code": False, "error_title": False, "error_details": False,
            })
            Send._wac_log(event, self.env._(
                "WhatsApp %(kind)s to %(name)s: Meta's answer was lost, but its status webhook "
                "proves the message was accepted (%(wamid)s); it is not sent again.",
                kind=Send._wac_kind_label(self.wa_kind), name=self.wa_partner_id.name,
                wamid=status.wamid))
            return "adopted %s from a status webhook" % status.wamid
        grace = self._wac_grace()
        if self._wac_age() < grace:
            return None
        reason = self.env._(
            "Uncertain: Meta may have sent it. The answer to the send was lost and no status "
            "arrived within %(minutes)s minutes. Check the customer's chat on the phone or in "
            "WhatsApp Manager, then press Retry only if it was not sent.",
            minutes=round(grace / 60))
        self._wac_close_attempt(self.id, {
            "status": "failed", "wa_attempt_open": False, "wa_uncertain": True,
            "error_title": self.env._("Uncertain: Meta may have sent it"),
            "error_details": reason})
        Send._wac_log(event, reason, activity=True)
        return "uncertain"

    def _wac_job_lost(self, event):
        """This message, left *pending* by an attempt Meta answered (nothing was sent), lost
        its job: it fails with the reason, and the organizer is notified (Retry sends it)."""
        self.ensure_one()
        Send = self.env["wac.send"]
        reason = self.env._(
            "Not sent: the job sending this WhatsApp %(kind)s to %(name)s stopped after "
            "Meta's last refusal (%(error)s). Press Retry to send it.",
            kind=Send._wac_kind_label(self.wa_kind), name=self.wa_partner_id.name,
            error=self.error_title or "?")
        self._wac_close_attempt(self.id, {"status": "failed", "error_details": reason})
        Send._wac_log(event, reason, activity=True)
        return "failed: job lost"

    @api.model
    def _wac_cron_settle_attempts(self):
        """Settle the appointment messages that no job will settle any more.

        The send job settles its own open attempt, and ``_wac_drop_jobs`` never cancels it;
        but a job can still end without doing so (cancelled by hand, failed, found dead after
        its retries). An open attempt then adopts a ``wamid`` from a status carrying its send
        key, or becomes *uncertain* after the grace period (the organizer is notified). A
        message left *pending* by a failed attempt fails, so a manager can press Retry.

        :returns: how many messages were looked at
        """
        orphans = self._wac_orphans()
        Event = self.env["calendar.event"].sudo().with_context(active_test=False)
        for orphan in orphans:
            event = Event.browse(orphan.res_id).exists()
            message = orphan.with_company(orphan.company_id)
            try:
                with self.env.cr.savepoint():
                    if message.wa_attempt_open:
                        message._wac_try_settle(event)
                    else:
                        message._wac_job_lost(event)
            except Exception:
                # One broken row must not keep the others unsettled; it is retried next run.
                _logger.exception("Could not settle WhatsApp message %s", orphan.id)
        return len(orphans)

    @api.model
    def _wac_orphans(self):
        """Appointment messages still *pending* without a ``wamid`` whose job will not run
        again (none with their send key is waiting or running)."""
        candidates = self.sudo().search([
            ("source", "=", "api"), ("status", "=", "pending"), ("wamid", "=", False),
            ("wa_send_key", "!=", False),
            ("wa_attempt_at", "<", fields.Datetime.now() - SETTLE_MIN_AGE)],
            order="id", limit=1000)
        live = set(self.env["queue.job"].sudo().search_fetch([
            ("identity_key", "in", candidates.mapped("wa_send_key")),
            ("state", "in", LIVE_JOB_STATES)], ["identity_key"]).mapped("identity_key"))
        return candidates.filtered(lambda m: m.wa_send_key not in live)
