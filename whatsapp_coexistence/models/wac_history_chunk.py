from odoo import fields, models


class WacHistoryChunk(models.Model):
    """One chunk of the coexistence history sync, as Meta numbered it.

    Meta sends the history of the last 180 days in phases (0: day 0-1, 1: day 1-90, 2: day
    90-180), each in chunks that "may not be delivered sequentially" (reference §2.3). One row per
    (phase, chunk order) shows what arrived, in which order, and how far the sync got.
    """

    _name = "wac.history.chunk"
    _description = "WhatsApp Coexistence history chunk"
    _order = "phase, chunk_order"
    _rec_name = "chunk_order"

    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    account_id = fields.Many2one("wac.account", required=True, ondelete="cascade", index=True,
                                 readonly=True)
    phase = fields.Integer(readonly=True)
    chunk_order = fields.Integer(readonly=True)
    progress = fields.Integer("Progress (%)", readonly=True)
    message_count = fields.Integer("Messages imported", readonly=True)
    create_date = fields.Datetime("Received", readonly=True)

    _sql_constraints = [
        ("chunk_uniq", "unique(account_id, phase, chunk_order)", "A chunk is recorded once."),
    ]
