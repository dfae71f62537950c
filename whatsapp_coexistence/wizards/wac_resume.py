from odoo import fields, models
from odoo.exceptions import UserError


class WacResume(models.TransientModel):
    """A WhatsApp manager resumes a paused company: Test connection and the readiness
    checklist run first; anything that blocks must be fixed (no override: a send would hit
    the same wall and pause again), and the reason is recorded."""

    _name = "wac.resume"
    _description = "Resume WhatsApp automation"

    account_id = fields.Many2one("wac.account", required=True, readonly=True)
    pause_reason = fields.Char(related="account_id.automation_pause_reason")
    held_count = fields.Integer(related="account_id.wac_held_count")
    blockers = fields.Text("What still blocks", readonly=True)
    warnings = fields.Text("To look at", readonly=True)
    can_resume = fields.Boolean(readonly=True)
    reason = fields.Text("Why resume now")

    def _wac_run_checks(self):
        """Run Test connection and the checklist; keep what they found."""
        for wizard in self:
            check = wizard.account_id._wac_resume_check()
            wizard.write({
                "blockers": "\n".join("• " + item for item in check.blockers) or False,
                "warnings": "\n".join("• " + item for item in check.warnings) or False,
                "can_resume": not check.blockers,
            })

    def action_check_again(self):
        """Run the checks again after fixing something (the wizard stays open)."""
        self.ensure_one()
        self._wac_run_checks()
        return {"type": "ir.actions.act_window", "res_model": self._name, "res_id": self.id,
                "view_mode": "form", "target": "new", "name": self.env._("Resume automation")}

    def action_confirm(self):
        """Resume (the account checks again) and show the account."""
        self.ensure_one()
        reason = (self.reason or "").strip()
        if not reason:
            raise UserError(self.env._("Say why automation resumes now: it goes to the "
                                       "audit log."))
        self.account_id._wac_resume(reason)
        return {"type": "ir.actions.act_window_close",
                "infos": {"wac_resumed": self.account_id.id}}
