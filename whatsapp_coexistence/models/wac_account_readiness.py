"""Readiness, the go-live gate and the audit of a company's WhatsApp settings.

Kept apart from ``wac_account.py`` (connection and credentials): this file is what decides
whether a company may switch its automation on, and who changed what.
"""

from odoo import fields, models
from odoo.exceptions import AccessError, UserError

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
