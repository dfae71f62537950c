from odoo import api, fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    # A One2many, not a related field: it goes through wac.account's record rules, so a user of
    # another company sees nothing of this company's WhatsApp account.
    wa_account_ids = fields.One2many("wac.account", "company_id")
    wa_account_id = fields.Many2one(
        "wac.account", string="WhatsApp account", compute="_compute_wa_account_id",
        compute_sudo=False)

    @api.depends("wa_account_ids")
    def _compute_wa_account_id(self):
        # Searched, not read through wa_account_ids: another company's account stays invisible
        # instead of raising an access error on the company record.
        accounts = self.env["wac.account"].search([("company_id", "in", self.ids)])
        by_company = {account.company_id: account for account in accounts}
        for company in self:
            company.wa_account_id = by_company.get(company, False)
