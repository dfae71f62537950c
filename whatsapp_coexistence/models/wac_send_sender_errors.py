"""Meta's errors in the send job: retried, failed, or the company paused, by error class.

Part of ``wac.send.sender`` (``wac_send_sender.py`` has the job itself); the classes come from
``tools/wa_cloud/errors.py``.
"""

import math

from odoo import fields, models

from odoo.addons.queue_job.exception import RetryableJobError

from ..tools.wa_cloud import errors as wa_errors
from .wac_send_sender import MAX_ATTEMPTS


class WacSendSender(models.AbstractModel):
    """How the send job answers Meta's refusals."""

    _inherit = "wac.send.sender"  # pylint: disable=consider-merging-classes-inherited

    def _wac_handle_error(self, out, error, message_id):
        """Meta refused or could not be reached: retry, fail or pause, by error class."""
        details = {"error_code": error.code or False, "error_title": (error.title or "")[:200],
                   "error_details": str(error), "wa_attempt_open": False}
        if isinstance(error, wa_errors.TransportError):
            # Meta may have accepted it: the attempt stays open (wac_send_sender.py's docstring).
            raise RetryableJobError("Graph unreachable or answer lost: %s" % error,
                                    seconds=30, ignore_retry=True)
        if isinstance(error, wa_errors.ThrottlingError):
            self._wac_throttled(out, error, message_id, details)
        if isinstance(error, wa_errors.RetryableError):
            return self._wac_retry_or_fail(out, error, message_id, details)
        if isinstance(error, wa_errors.TenantBlockingError):
            return self._wac_tenant_blocked(out, error, message_id, details)
        self.env["wac.message"]._wac_close_attempt(message_id, dict(details, status="failed"))
        jobs = self._wac_jobs()
        jobs._wac_log(out.event, self.env._(
            "WhatsApp %(kind)s to %(name)s refused by Meta: %(error)s",
            kind=jobs._wac_kind_label(out.kind), name=out.partner.name, error=str(error)))
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
        self._wac_jobs()._wac_log(out.event, reason, activity=True)
        return "failed: %s" % error

    def _wac_tenant_blocked(self, out, error, message_id=None, details=None):
        """Meta blocks the whole company (token, account, payment): automation is paused.

        Meta answered, so nothing was sent: the message is held with the others and goes
        (or is dropped) on Resume. Without ``message_id`` Meta refused a step before the
        message's intent (the upload of a template's header file): the message is held the
        way a paused company holds it.
        """
        account = out.account
        reason = self.env._("Meta blocks sending for %(company)s: %(error)s",
                            company=out.company.name, error=account._wac_error_advice(error))
        if message_id:
            self.env["wac.message"]._wac_close_attempt(message_id, dict(
                details or {}, status="held", wa_held_reason=reason,
                wa_held_since=fields.Datetime.now()))
        else:
            self.env["wac.message"]._wac_hold_row(out, reason)
        vals = {"last_error": reason}
        if isinstance(error, wa_errors.AuthError):
            vals.update(state="needs_reauth", state_reason=str(error))
        account._wac_pause(reason, **vals)
        jobs = self._wac_jobs()
        jobs._wac_log(out.event, self.env._(
            "WhatsApp %(kind)s to %(name)s not sent, automation paused: %(reason)s",
            kind=jobs._wac_kind_label(out.kind), name=out.partner.name, reason=reason))
        return "paused: %s" % error
