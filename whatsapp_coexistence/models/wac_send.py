"""The appointment send jobs: how they are built, queued, dropped and started.

``wac.send`` is the queue_job face of the appointment messages. Its entry points are stored
by name in ``queue.job`` rows, ``queue.job.function`` records and the reminder cron, so they
stay here and hand the work over: the send job to ``wac.send.sender`` (at most once; see
``wac_send_sender.py`` for the crash window), the planning job and the cron to
``wac.send.planner``. It also holds what both read: the clock, the kill switch and why a
company sends nothing right now.
"""

import logging
from typing import NamedTuple

from odoo import api, fields, models

from odoo.addons.queue_job import delay as qj_delay
from odoo.addons.queue_job.job import Job

from ..const import CHANNEL_WHATSAPP, PARAM_KILL_SWITCH
from ..tools.wa_cloud.send_key import parse_send_key, send_key

_logger = logging.getLogger(__name__)

#: queue_job retries; Meta errors stop earlier (MAX_ATTEMPTS) and waits use ignore_retry.
JOB_MAX_RETRIES = 20


class SendJob(NamedTuple):
    """One send job before it is queued: the sending company, the arguments of
    :meth:`WacSend._wac_job_send` and the queue_job options (see ``_wac_send_job``)."""

    company: models.BaseModel
    args: tuple
    options: dict


class Blocker(NamedTuple):
    """Why a company sends nothing automatically right now (``_wac_company_blocker``).

    :ivar reason: what people read
    :ivar worth_a_log: worth a line on the appointment's chatter
    :ivar holds: the stop is temporary (a pause, the kill switch): messages that come due
        are held and go, or are dropped, when it ends (``wac_message_hold.py``)
    """

    reason: str
    worth_a_log: bool
    holds: bool = False


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

    @api.model
    def _wac_kill_switch(self):
        return self.env["ir.config_parameter"].sudo().get_param(PARAM_KILL_SWITCH) in (
            "True", "true", "1")

    @api.model
    def _wac_company_blocker(self, company, account=None):
        """Why ``company`` sends nothing automatically right now, or ``None``.

        A disabled or missing account sends nothing, for good. A pause or the kill switch
        *holds*: they end with Resume or when the switch goes off, so the messages that come
        due meanwhile wait for that instead of being lost.

        :param account: the company's account when the caller has it already
        :rtype: Blocker or None
        """
        _ = self.env._
        if account is None:
            account = company.sudo().wa_account_id
        if not account:
            return Blocker(_("%(company)s has no WhatsApp account.", company=company.name), False)
        if account.automation_mode == "disabled":
            return Blocker(_("WhatsApp automation is disabled for %(company)s.",
                             company=company.name), False)
        if self._wac_kill_switch():
            return Blocker(_("Automated WhatsApp messages are stopped for the whole "
                             "installation (kill switch)."), True, True)
        if account.automation_paused:
            return Blocker(_("WhatsApp automation of %(company)s is paused: %(reason)s",
                             company=company.name,
                             reason=account.automation_pause_reason or "?"), True, True)
        if account.state != "connected":
            return Blocker(_("The WhatsApp account of %(company)s is not connected "
                             "(%(state)s).", company=company.name,
                             state=dict(account._fields["state"]._description_selection(
                                 self.env)).get(account.state)), True)
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
        return self.env["wac.send.sender"]._wac_send(
            company_id, event_id, kind, partner_id, start, snapshot)
