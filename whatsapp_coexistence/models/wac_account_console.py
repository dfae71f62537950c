"""The operator console on a company's account: readiness, the go-live gate, the audit of its
settings, and the figures of its overview card.

Kept apart from ``wac_account.py`` (connection and credentials). The checks live in
``wac.readiness`` and the counts in ``wac.overview``; this extension holds the fields the
views show and the actions they call.
"""

from odoo import fields, models
from odoo.exceptions import AccessError, UserError

from .wac_overview import COUNTED as OVERVIEW_COUNTED

# Settings of a company whose changes are audited (old → new).
AUDITED_FIELDS = [
    "automation_mode", "pilot_allowlist", "rate_limit_mps", "recipient_spacing_s",
    "recipient_daily_cap", "reminder_offset_hours", "quiet_hours_start", "quiet_hours_end",
    "opt_out_keywords", "opt_in_keywords", "reply_confirm_words", "reply_cancel_words",
    "manual_message_text", "waba_id", "phone_number_id", "display_phone_number",
]


class WacAccount(models.Model):
    _inherit = "wac.account"

    readiness_html = fields.Html("Readiness", compute="_compute_readiness", sanitize=False)
    readiness_summary = fields.Char("Ready", compute="_compute_readiness")
    readiness_count = fields.Integer(compute="_compute_readiness")
    support_attested = fields.Boolean(compute="_compute_attested")
    compliance_attested = fields.Boolean(compute="_compute_attested")
    golive_override_by = fields.Many2one("res.users", "Go-live forced by", readonly=True,
                                         copy=False)
    golive_override_on = fields.Datetime("Go-live forced on", readonly=True, copy=False)
    golive_override_reason = fields.Text("Why it was forced", readonly=True, copy=False)

    # Overview card -----------------------------------------------------------------------------
    ov_sent_24h = fields.Integer("Sent (24 h)", compute="_compute_overview")
    ov_delivered_24h = fields.Integer("Delivered (24 h)", compute="_compute_overview")
    ov_read_24h = fields.Integer("Read (24 h)", compute="_compute_overview")
    ov_failed_24h = fields.Integer("Failed (24 h)", compute="_compute_overview")
    ov_sent_7d = fields.Integer("Sent (7 days)", compute="_compute_overview")
    ov_delivered_7d = fields.Integer("Delivered (7 days)", compute="_compute_overview")
    ov_read_7d = fields.Integer("Read (7 days)", compute="_compute_overview")
    ov_failed_7d = fields.Integer("Failed (7 days)", compute="_compute_overview")
    ov_failure_rate_7d = fields.Float("Failure rate (7 days, %)", compute="_compute_overview",
                                      digits=(5, 1))
    ov_uncertain = fields.Integer("Uncertain sends", compute="_compute_overview",
                                  help="Sends whose outcome is unknown, or whose answer was "
                                  "lost (Meta may have sent them): a person checks the chat, "
                                  "then presses Retry only if nothing went out.")
    # Messages held while a company is paused: issue #11 fills it; until then nothing is held.
    ov_held = fields.Integer("Held", compute="_compute_overview")
    ov_jobs_waiting = fields.Integer("Jobs waiting", compute="_compute_overview")
    ov_alerts = fields.Integer("Open alert activities", compute="_compute_overview")
    ov_last_webhook = fields.Datetime("Last webhook", compute="_compute_overview")

    def _compute_readiness(self):
        Readiness = self.env["wac.readiness"]
        for account in self:
            if not account.id:
                account.readiness_html = account.readiness_summary = False
                account.readiness_count = 0
                continue
            items = Readiness._wac_items(account)
            account.readiness_html = Readiness._wac_render(items)
            account.readiness_count = sum(item.ok for item in items)
            account.readiness_summary = "%d/%d" % (account.readiness_count, len(items))

    def _compute_attested(self):
        rows = self.env["wac.attestation"].sudo().search([("account_id", "in", self.ids)])
        for account in self:
            keys = set(rows.filtered(lambda r, a=account: r.account_id == a).mapped("key"))
            account.support_attested = "support" in keys
            account.compliance_attested = "compliance" in keys

    def _wac_readiness(self):
        """The checklist of this account (see ``wac.readiness``)."""
        self.ensure_one()
        return self.env["wac.readiness"]._wac_items(self)

    # ------------------------------------------------------------
    # GO-LIVE GATE AND AUDIT
    # ------------------------------------------------------------

    def write(self, vals):
        self._normalize_vals(vals)
        if vals.get("automation_mode") == "enabled":
            # Who may not write is told so, before being told what is not ready.
            self.check_access("write")
            self.filtered(lambda a: a.automation_mode != "enabled")._wac_check_golive()
        elif vals.get("automation_mode") in ("disabled", "dry_run"):
            # A forced go-live holds for one go-live only.
            vals = dict(vals, golive_override_by=False, golive_override_on=False,
                        golive_override_reason=False)
        self.env["wac.audit.log"]._wac_log_writes(self, vals, AUDITED_FIELDS)
        return super().write(vals)

    def _wac_check_golive(self):
        """Refuse to enable automation while a blocking readiness item is open, unless a
        system administrator forced this go-live (``golive_override_on``)."""
        for account in self.filtered(lambda a: not a.golive_override_on):
            open_items = self.env["wac.readiness"]._wac_blocking_open(account)
            if open_items:
                raise UserError(self.env._(
                    "%(company)s cannot switch automation on yet. Still open:\n%(items)s\n\n"
                    "Use Dry run meanwhile; a system administrator can force the go-live "
                    "with a reason.", company=account.company_id.name,
                    items="\n".join("• " + label for label in open_items)))

    def _wac_force_golive(self, reason):
        """Enable automation despite open items; only for system administrators."""
        self.ensure_one()
        if not self.env.user.has_group("base.group_system"):
            raise AccessError(self.env._("Only a system administrator can force a go-live."))
        open_items = self.env["wac.readiness"]._wac_blocking_open(self)
        self.write({"golive_override_by": self.env.uid,
                    "golive_override_on": fields.Datetime.now(),
                    "golive_override_reason": reason})
        self.env["wac.audit.log"]._wac_log(
            self, "override", self.env._("Go-live forced"), new=reason,
            note="\n".join(open_items))
        self.write({"automation_mode": "enabled"})
        self.message_post(body=self.env._(
            "Go-live forced by %(user)s: %(reason)s", user=self.env.user.name, reason=reason),
            subtype_xmlid="mail.mt_note")

    # ------------------------------------------------------------
    # ATTESTATIONS
    # ------------------------------------------------------------

    def _wac_attest(self, key):
        self.ensure_one()
        self.check_access("write")
        Attestation = self.env["wac.attestation"].sudo()
        if not Attestation.search_count([("account_id", "=", self.id), ("key", "=", key)]):
            Attestation.create({"company_id": self.company_id.id, "account_id": self.id,
                                "key": key, "user_id": self.env.uid})
        return True

    def _wac_withdraw(self, key):
        self.ensure_one()
        self.check_access("write")
        self.env["wac.attestation"].sudo().search(
            [("account_id", "=", self.id), ("key", "=", key)]).unlink()
        return True

    def action_wac_attest_support(self):
        return self._wac_attest("support")

    def action_wac_attest_compliance(self):
        return self._wac_attest("compliance")

    def action_wac_withdraw_support(self):
        return self._wac_withdraw("support")

    def action_wac_withdraw_compliance(self):
        return self._wac_withdraw("compliance")

    def action_wac_force_golive(self):
        """Open the form where a system administrator forces the go-live with a reason."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "wac.golive.override",
            "view_mode": "form",
            "target": "new",
            "context": {"default_account_id": self.id},
        }

    # ------------------------------------------------------------
    # OVERVIEW CARD
    # ------------------------------------------------------------

    def _compute_overview(self):
        Overview = self.env["wac.overview"]
        counts = Overview._wac_message_counts(self)
        jobs = Overview._wac_jobs(self)
        webhooks = Overview._wac_last_webhooks(self)
        alerts = Overview._wac_alerts(self)
        for account in self:
            company = account.company_id.id
            figures = dict.fromkeys(OVERVIEW_COUNTED, 0)
            figures.update(counts.get(company, {}))
            account.update(figures)
            done = account.ov_sent_7d + account.ov_failed_7d
            account.ov_failure_rate_7d = 100.0 * account.ov_failed_7d / done if done else 0.0
            account.ov_held = 0
            account.ov_jobs_waiting = jobs.get(company, 0)
            account.ov_last_webhook = webhooks.get(company, False)
            account.ov_alerts = alerts.get(account.id, 0)

    def action_wac_open_figure(self):
        """Open the list behind the figure named in the context key ``wac_figure``."""
        self.ensure_one()
        figure = self.env.context.get("wac_figure") or "sent_7d"
        labels = {name[3:]: field.string for name, field in self._fields.items()
                  if name.startswith("ov_")}
        title = "%s · %s" % (self.company_id.name, labels.get(figure, figure))
        if figure == "jobs":
            return {"type": "ir.actions.act_window", "name": title, "res_model": "queue.job",
                    "views": [(False, "list"), (False, "form")],
                    "domain": self.env["wac.overview"]._wac_figure_domain(figure, self.company_id)}
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "whatsapp_coexistence.wac_message_action")
        # The web client titles the breadcrumb with display_name when the action has one.
        action.update(name=title, display_name=title, context={"create": False},
                      domain=self.env["wac.overview"]._wac_figure_domain(figure, self.company_id))
        return action

    def action_wac_open_alerts(self):
        self.ensure_one()
        return {"type": "ir.actions.act_window", "res_model": "mail.activity",
                "name": self.env._("%(company)s · Open alerts", company=self.company_id.name),
                "views": [(False, "list"), (False, "form")],
                "domain": [("res_model", "=", "wac.account"), ("res_id", "=", self.id)]}

    def action_wac_open_webhooks(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "whatsapp_coexistence.wac_webhook_event_action")
        title = self.env._("%(company)s · Webhooks", company=self.company_id.name)
        action.update(domain=[("company_id", "=", self.company_id.id)], name=title,
                      display_name=title)
        return action

    def action_wac_open_readiness(self):
        self.ensure_one()
        return {"type": "ir.actions.act_window", "res_model": "wac.account", "res_id": self.id,
                "views": [(False, "form")]}
