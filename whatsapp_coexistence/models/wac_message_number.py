"""The business number of each message, kept when the company changes number.

A message belongs to the account, whose ``phone_number_id`` changes with the number; the
number a message was sent or received on must not change with it: the old number's
conversations stay readable as what they were.
"""

from odoo import api, fields, models


class WacMessage(models.Model):
    _inherit = "wac.message"  # pylint: disable=consider-merging-classes-inherited

    phone_number_id = fields.Char(
        "Business number ID", readonly=True, index=True,
        help="The company's WhatsApp phone number the message was sent or received on. It "
        "stays the same when the company changes number.")

    @api.model_create_multi
    def create(self, vals_list):
        # Only the rows without a number read their account: a send passes the number it
        # goes out from, and its account is not in this (side) transaction's cache.
        missing = [vals for vals in vals_list
                   if not vals.get("phone_number_id") and vals.get("account_id")]
        accounts = self.env["wac.account"].sudo().browse(
            {vals["account_id"] for vals in missing})
        numbers = {account.id: account.phone_number_id for account in accounts}
        for vals in missing:
            vals["phone_number_id"] = numbers.get(vals["account_id"]) or False
        return super().create(vals_list)
