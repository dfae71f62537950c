import logging
from datetime import UTC, datetime

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..const import PARAM_APP_ID
from ..tools.wa_cloud import errors as wa_errors
from ..tools.wa_cloud import health as wa_health

_logger = logging.getLogger(__name__)


class WacAccount(models.Model):
    """The hourly health check of a company's number, and the thresholds of its alerts."""

    _inherit = "wac.account"

    # What the last health check read from Meta --------------------------------------------
    health_checked_on = fields.Datetime("Health checked on", readonly=True, copy=False)
    health_error = fields.Text(readonly=True, copy=False,
                               help="Why the last health check could not read everything.")
    health_phone_status = fields.Char("Number status", readonly=True, copy=False,
                                      help="CONNECTED while Meta lets the number send.")
    health_name_status = fields.Char("Display name status", readonly=True, copy=False)
    health_messaging_limit = fields.Char("Messaging limit", readonly=True, copy=False)
    health_app_subscribed = fields.Selection(
        [("yes", "Subscribed"), ("no", "Not subscribed")], "App subscription",
        readonly=True, copy=False,
        help="Whether our Meta app is still subscribed to the WABA: without it no webhook "
        "arrives.")
    health_token_valid = fields.Selection(
        [("yes", "Valid"), ("no", "Invalid")], "Token", readonly=True, copy=False)
    health_token_expires_on = fields.Datetime(
        "Token expires on", readonly=True, copy=False,
        help="Empty for a System User token, which never expires.")

    # Alert thresholds (per company) -----------------------------------------------------
    alert_token_days = fields.Integer("Warn before token expiry (days)", default=7)
    alert_failure_rate = fields.Float("Failure rate alert (%)", default=10.0,
                                      help="Over this share of failed messages in the last "
                                      "hour...")
    alert_failure_min = fields.Integer("...and at least (failures)", default=5)
    alert_webhook_silence_hours = fields.Integer(
        "No webhook alert after (hours)", default=6,
        help="Alert when the company sent messages but no webhook arrived for this long.")
    alert_job_wait_minutes = fields.Integer("Job waiting alert after (minutes)", default=15)
    alert_held_minutes = fields.Integer("Held message alert after (minutes)", default=60)

    # ------------------------------------------------------------
    # HEALTH CHECK
    # ------------------------------------------------------------

    @api.model
    def _wac_cron_health_check(self):
        """Hourly: check every connected number; one failure stops nothing."""
        for account in self.search([("state", "=", "connected"), ("phone_number_id", "!=", False),
                                    ("token_set_on", "!=", False)]):
            try:
                account._wac_check_health()
            except Exception as error:  # cron boundary: recorded below, never lost
                _logger.warning("Health check of %s failed: %s", account.display_name,
                                wa_errors.sanitize(repr(error)))
                account.write({"health_checked_on": fields.Datetime.now(),
                               "health_error": wa_errors.sanitize(str(error))})
            account._wac_evaluate_alerts()

    def _wac_check_health(self):
        """Read the number, the app subscription and the token from Meta: three requests.

        Each read is recorded on its own: a Meta outage on one leaves the others' results and
        says so in ``health_error``.
        """
        self.ensure_one()
        try:
            client = self._wac_client()
        except UserError as error:
            self.write({"health_checked_on": fields.Datetime.now(), "health_error": str(error)})
            return
        vals, problems = {"health_checked_on": fields.Datetime.now()}, []
        for read in (self._wac_read_phone_health, self._wac_read_subscription,
                     self._wac_read_token):
            try:
                vals.update(read(client))
            except wa_errors.WaCloudError as error:
                problems.append(self._wac_health_problem(error, vals))
        vals["health_error"] = "\n".join(problems) or False
        self.write(vals)

    def _wac_health_problem(self, error, vals):
        """Turn a Meta error of the health check into a line; a rejected token is recorded."""
        if isinstance(error, wa_errors.AuthError):
            vals.update(health_token_valid="no", state="needs_reauth",
                        state_reason=wa_errors.sanitize(str(error)))
        return self._wac_error_advice(error)

    def _wac_read_phone_health(self, client):
        info = client.get_phone_health(self.phone_number_id)
        quality = info.get("quality_rating")
        return {
            "health_phone_status": info.get("status") or False,
            "health_name_status": info.get("name_status") or False,
            "health_messaging_limit": info.get("messaging_limit_tier") or False,
            "quality_rating": quality if quality in dict(
                self._fields["quality_rating"].selection) else "UNKNOWN",
        }

    def _wac_read_subscription(self, client):
        app_id = self.env["ir.config_parameter"].sudo().get_param(PARAM_APP_ID)
        if not (app_id and self.waba_id):
            return {}
        return {"health_app_subscribed":
                "yes" if client.is_app_subscribed(self.waba_id, app_id) else "no"}

    def _wac_read_token(self, client):
        if not (client.app_id and client.has_token) or not self._wac_app_secret():
            return {}
        token = client.debug_token()
        expires = (datetime.fromtimestamp(token.expires_at, UTC).replace(tzinfo=None)
                   if token.expires_at else False)
        return {"health_token_valid": "yes" if token.is_valid else "no",
                "health_token_expires_on": expires}

    def _wac_phone_connected(self):
        """``False`` when the last health check saw the number in another state than
        CONNECTED (an unread status is not a problem)."""
        self.ensure_one()
        return self.health_phone_status in (False, wa_health.PHONE_CONNECTED)
