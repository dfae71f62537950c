from odoo import api, fields, models


class WacGoliveOverride(models.TransientModel):
    """A system administrator switches a company's automation on although blocking readiness
    items are open, and says why. The reason goes to the audit log and the account."""

    _name = "wac.golive.override"
    _description = "Force a WhatsApp go-live"

    account_id = fields.Many2one("wac.account", required=True, readonly=True)
    open_items = fields.Text("Still open", compute="_compute_open_items")
    reason = fields.Text(required=True)

    @api.depends("account_id")
    def _compute_open_items(self):
        for wizard in self:
            wizard.open_items = "\n".join(
                "• " + label for label in
                self.env["wac.readiness"]._wac_blocking_open(wizard.account_id)
            ) if wizard.account_id else False

    def action_confirm(self):
        self.ensure_one()
        self.account_id._wac_force_golive(self.reason.strip())
        return {"type": "ir.actions.act_window_close"}
