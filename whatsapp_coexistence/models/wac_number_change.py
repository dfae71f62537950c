"""A company's move to another WhatsApp number: what it left, what it took, who did it.

The row outlives the change: webhooks Meta still sends to the previous number are told apart
from webhooks of numbers nobody here ever had (see ``wac.webhook.event._wac_route``).
"""

from odoo import api, fields, models

CHANGE_SOURCES = [
    ("wizard", "Change number"),
    ("signup", "Embedded Signup"),
    ("edit", "Edited by hand"),
]


class WacNumberChange(models.Model):
    """One change of an account's phone number."""

    _name = "wac.number.change"
    _description = "WhatsApp Coexistence number change"
    _order = "id desc"
    _rec_name = "old_phone_number_id"
    _check_company_auto = True

    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    account_id = fields.Many2one("wac.account", required=True, ondelete="cascade", index=True,
                                 readonly=True, check_company=True)
    user_id = fields.Many2one("res.users", "By", required=True, readonly=True,
                              default=lambda self: self.env.user)
    source = fields.Selection(CHANGE_SOURCES, "How", required=True, readonly=True)
    old_phone_number_id = fields.Char("Previous number ID", required=True, index=True,
                                      readonly=True)
    old_display_phone_number = fields.Char("Previous number", readonly=True)
    new_phone_number_id = fields.Char("New number ID", required=True, readonly=True)
    new_display_phone_number = fields.Char("New number", readonly=True)
    old_history_messages = fields.Integer(
        "History imported on the previous number", readonly=True,
        help="Messages the previous number's history sync imported; they stay in the "
        "messages, with the previous number.")
    contacts_request_id = fields.Char("Contacts sync request", readonly=True)
    history_request_id = fields.Char("History sync request", readonly=True)
    sync_error = fields.Text("Sync request error", readonly=True)

    @api.model
    def _wac_retired(self, phone_number_ids):
        """``{phone number id: its latest change}`` for the ids a company has left.

        :param phone_number_ids: ids no account owns now
        """
        ids = [pid for pid in set(phone_number_ids) if pid]
        if not ids:
            return {}
        result = {}
        for change in self.sudo().search([("old_phone_number_id", "in", ids)], order="id"):
            result[change.old_phone_number_id] = change
        return result

    def _wac_unroutable_summary(self):
        """What a person reads on a webhook still addressed to this change's old number."""
        self.ensure_one()
        return self.env._(
            "Addressed to the company's previous number %(number)s (%(company)s changed to "
            "%(new)s on %(date)s): not processed.",
            number=self.old_display_phone_number or self.old_phone_number_id,
            company=self.company_id.name,
            new=self.new_display_phone_number or self.new_phone_number_id,
            date=fields.Date.to_string(self.create_date))
