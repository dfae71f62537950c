import pytz

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

    def _wac_tz(self, organizer_tz=None):
        """The time zone messages are written in: the company's (its partner's ``tz``), then
        ``organizer_tz``, then UTC. A clinic's customers read the clinic's local time."""
        self.ensure_one()
        try:
            return pytz.timezone(self.partner_id.tz or organizer_tz or "UTC")
        except pytz.UnknownTimeZoneError:
            return pytz.utc


def wac_local(value, tz):
    """``value`` (UTC, naive, or its string form) as an aware time in ``tz``."""
    if isinstance(value, str):
        value = fields.Datetime.from_string(value)
    return pytz.utc.localize(value).astimezone(tz)
