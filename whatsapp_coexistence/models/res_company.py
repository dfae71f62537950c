from odoo import api, fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    # A One2many, not a related field: it goes through wac.account's record rules, so a user of
    # another company sees nothing of this company's WhatsApp account.
    wa_account_ids = fields.One2many("wac.account", "company_id")
    wa_account_id = fields.Many2one(
        "wac.account", string="WhatsApp account", compute="_compute_wa_account_id")

    @api.depends("wa_account_ids")
    def _compute_wa_account_id(self):
        for company in self:
            company.wa_account_id = company.wa_account_ids[:1]
