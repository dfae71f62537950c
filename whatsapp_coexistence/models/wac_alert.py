
from markupsafe import Markup

from odoo import api, fields, models

ALERT_CAUSES = [
    ("disconnected", "Number disconnected or offboarded"),
    ("token", "Access token invalid or expiring"),
    ("subscription", "App not subscribed to the WABA"),
    ("quality", "Quality rating dropped"),
    ("display_name", "Display name refused"),
    ("template", "A mapped template is paused, disabled or rejected"),
    ("failure_rate", "Too many failed messages"),
    ("webhook_silence", "No webhooks received"),
    ("job_backlog", "Jobs waiting too long"),
    ("held", "Messages held too long"),
]


class WacAlert(models.Model):
    """One problem of one company's WhatsApp number, for as long as it lasts.

    At most one alert per account and cause is not closed (a partial unique index). While the
    cause persists the alert is updated, not repeated; when it clears the alert closes itself
    and its activities are marked done. A manager who marks the activity done acknowledges the
    alert: it stays until the cause clears, without new activities, and says who closed it.
    """

    _name = "wac.alert"
    _description = "WhatsApp Coexistence Alert"
    _order = "state, opened_on desc, id desc"
    _check_company_auto = True

    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    account_id = fields.Many2one("wac.account", required=True, index=True, readonly=True,
                                 ondelete="cascade", check_company=True)
    cause = fields.Selection(ALERT_CAUSES, required=True, readonly=True)
    state = fields.Selection(
        [("open", "Open"), ("acknowledged", "Acknowledged"), ("closed", "Closed")],
        default="open", required=True, readonly=True, index=True,
        help="Acknowledged: a person closed the activity, the cause is still there.")
    details = fields.Text(readonly=True, help="What is wrong now, and what to do.")
    opened_on = fields.Datetime(readonly=True, default=fields.Datetime.now)
    updated_on = fields.Datetime(readonly=True, default=fields.Datetime.now)
    closed_on = fields.Datetime(readonly=True)
    closed_by = fields.Many2one("res.users", readonly=True,
                                help="Empty when the alert closed itself (the cause cleared).")
    close_note = fields.Char(readonly=True)
    activity_ids = fields.One2many("mail.activity", "wac_alert_id", "Activities", readonly=True)

    def init(self):
        self.env.cr.execute("""
            CREATE UNIQUE INDEX IF NOT EXISTS wac_alert_one_live_per_cause
                ON wac_alert (account_id, cause) WHERE state != 'closed'
        """)

    @api.depends("cause", "account_id")
    def _compute_display_name(self):
        labels = dict(self._fields["cause"]._description_selection(self.env))
        for alert in self:
            alert.display_name = "%s: %s" % (alert.account_id.company_id.name or "?",
                                             labels.get(alert.cause))

    # ------------------------------------------------------------
    # RAISE / UPDATE / CLEAR
    # ------------------------------------------------------------

    @api.model
    def _wac_sync(self, account, problems):
        """Bring the alerts of ``account`` in line with ``problems``.

        :param account: a ``wac.account``
        :param dict problems: ``{cause: details}``; ``details`` is ``None`` (or empty) when
            the cause is clear. Causes missing from the dict are left as they are.
        """
        live = {a.cause: a for a in self.sudo().search([
            ("account_id", "=", account.id), ("state", "!=", "closed")])}
        for cause, details in problems.items():
            alert = live.get(cause)
            if details and not alert:
                self._wac_raise(account, cause, details)
            elif details and alert.details != details:
                alert._wac_update(details)
            elif not details and alert:
                alert._wac_clear()

    @api.model
    def _wac_raise(self, account, cause, details):
        alert = self.sudo().create({"company_id": account.company_id.id,
                                    "account_id": account.id, "cause": cause,
                                    "details": details})
        summary = alert._wac_summary()
        for user in account._wac_managers():
            activity = account.sudo().activity_schedule(
                "mail.mail_activity_data_todo", user_id=user.id, summary=summary,
                note=details)
            activity.wac_alert_id = alert
        account.sudo().message_post(
            body=Markup("<b>%s</b><br/>%s") % (self.env._("Alert: %s", summary), details),
            subtype_xmlid="mail.mt_note")
        return alert

    def _wac_update(self, details):
        """The cause persists with new figures: refresh the alert and its open activities."""
        self.ensure_one()
        self.write({"details": details, "updated_on": fields.Datetime.now()})
        self.activity_ids.sudo().write({"note": details})

    def _wac_clear(self):
        """The cause cleared: close the alert and mark its activities done."""
        self.ensure_one()
        note = self.env._("Resolved: the cause cleared (%s).", self._wac_summary())
        self.write({"state": "closed", "closed_on": fields.Datetime.now(),
                    "close_note": note})
        self.activity_ids.sudo().action_feedback(feedback=note)
        self.account_id.sudo().message_post(body=note, subtype_xmlid="mail.mt_note")

    def _wac_acknowledge(self, user):
        """A person marked an activity of the alert done while the cause persists."""
        for alert in self.filtered(lambda a: a.state == "open"):
            note = self.env._("Acknowledged by %(user)s (%(cause)s); it closes when the cause "
                              "clears.", user=user.name, cause=alert._wac_summary())
            alert.sudo().write({"state": "acknowledged", "closed_by": user.id,
                                "close_note": note})
            alert.account_id.sudo().message_post(body=note, subtype_xmlid="mail.mt_note")

    def _wac_summary(self):
        self.ensure_one()
        return dict(self._fields["cause"]._description_selection(self.env)).get(self.cause)
