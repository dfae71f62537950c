from odoo import api, fields, models


class WacChangeNumber(models.TransientModel):
    """A WhatsApp manager moves the company to another number of its WABA: chosen among the
    numbers Meta lists, or typed as a Phone Number ID. ``wac.account._wac_change_number``
    checks it with Meta and does the change."""

    _name = "wac.change.number"
    _description = "Change a company's WhatsApp number"

    account_id = fields.Many2one("wac.account", required=True, readonly=True)
    current_number = fields.Char("Current number", related="account_id.display_phone_number")
    option_ids = fields.One2many("wac.change.number.option", "wizard_id", "Numbers of the WABA",
                                 readonly=True)
    option_id = fields.Many2one("wac.change.number.option", "New number",
                                domain="[('wizard_id', '=', id), ('current', '=', False)]")
    phone_number_id = fields.Char(
        "Or its Phone Number ID",
        help="WhatsApp Manager › Account tools › Phone numbers. Used when no number is chosen "
        "above.")

    @api.model
    def _wac_open(self, account):
        """Create the wizard with the WABA's numbers listed by Meta."""
        numbers = account._wac_waba_numbers()
        return self.create({"account_id": account.id, "option_ids": [
            (0, 0, {"phone_number_id": pid, "display_phone_number": display,
                    "verified_name": name, "current": pid == account.phone_number_id})
            for pid, display, name in numbers]})

    def action_confirm(self):
        self.ensure_one()
        self.account_id._wac_change_number(
            self.option_id.phone_number_id or self.phone_number_id)
        return {"type": "ir.actions.act_window_close"}


class WacChangeNumberOption(models.TransientModel):
    """One number of the WABA, as Meta listed it, to choose in *Change number*."""

    _name = "wac.change.number.option"
    _description = "A number to change to"
    _rec_name = "display_phone_number"

    wizard_id = fields.Many2one("wac.change.number", "Change number", required=True,
                                ondelete="cascade")
    phone_number_id = fields.Char(required=True)
    display_phone_number = fields.Char("Number")
    verified_name = fields.Char("Name")
    current = fields.Boolean("Current number")

    @api.depends("display_phone_number", "verified_name", "phone_number_id")
    def _compute_display_name(self):
        for option in self:
            option.display_name = "%s — %s (%s)" % (
                option.display_phone_number or "?", option.verified_name or "?",
                option.phone_number_id)
