from odoo import fields, models

from .wac_message import MESSAGE_STATUSES


class WacMessageStatus(models.Model):
    """One status webhook of an outbound message: the message's timeline.

    Unique per (company, wamid, status), so a redelivered status changes nothing. A status may
    arrive before its message is known (a worker between Meta's answer and its commit): it is
    kept with no message and applied when the message appears.
    """

    _name = "wac.message.status"
    _description = "WhatsApp Coexistence message status"
    _order = "status_at, id"
    _rec_name = "status"

    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    message_id = fields.Many2one("wac.message", index=True, ondelete="cascade", readonly=True)
    wamid = fields.Char(required=True, index=True, readonly=True)
    status = fields.Selection(MESSAGE_STATUSES, required=True, readonly=True)
    status_at = fields.Datetime(readonly=True)
    recipient_id = fields.Char(readonly=True)
    biz_opaque_callback_data = fields.Char(readonly=True)
    pricing_category = fields.Char(readonly=True)
    pricing_type = fields.Char(readonly=True)
    error_code = fields.Integer(readonly=True)
    error_title = fields.Char(readonly=True)
    error_details = fields.Text(readonly=True)

    _sql_constraints = [
        ("status_uniq", "unique(company_id, wamid, status)", "A status is recorded once."),
    ]
