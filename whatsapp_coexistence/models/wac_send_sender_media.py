from odoo import models

from odoo.addons.queue_job.exception import RetryableJobError

from ..tools.wa_cloud import errors as wa_errors


class WacSendSender(models.AbstractModel):
    """Meta's answer to the upload of a template's header file, before the message exists."""

    _inherit = "wac.send.sender"

    def _wac_send_now(self, out):
        # Meta's refusals of the message itself are handled inside (``_wac_deliver``): a Graph
        # error that comes out here is the header file's upload, made while rendering, before
        # any intent was written, so nothing was sent and retrying is safe.
        try:
            return super()._wac_send_now(out)
        except wa_errors.WaCloudError as error:
            return self._wac_header_upload_refused(out, error)

    def _wac_header_upload_refused(self, out, error):
        """Retry a temporary refusal, pause the company when Meta blocks it, else fail the
        message with Meta's reason."""
        if isinstance(error, wa_errors.RetryableError):
            raise RetryableJobError(
                "Upload of the template's header file refused for now: %s" % error,
                seconds=error.retry_after or 60)
        if isinstance(error, wa_errors.TenantBlockingError):
            return self._wac_tenant_blocked(out, error)
        return self._wac_fail(out, self._wac_message_vals(out), self.env._(
            "Meta refused the template's header file: %s", error))
