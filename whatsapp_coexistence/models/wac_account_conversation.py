from odoo import fields, models

from .wac_conversation import NOTIFY_MODES


class WacAccount(models.Model):
    """Who hears of the customers' messages of this company."""

    _inherit = "wac.account"  # pylint: disable=consider-merging-classes-inherited

    conversation_notify = fields.Selection(
        NOTIFY_MODES, string="Notify inbound messages to", default="team", required=True,
        help="Who gets an inbox notification when a customer writes. Without an upcoming "
        "appointment or an assigned user, the team is notified.")
    conversation_team_ids = fields.Many2many(
        "res.users", "wac_account_conversation_team_rel", "account_id", "user_id",
        string="WhatsApp team", domain="[('share', '=', False)]",
        help="The users who answer WhatsApp for this company.")
