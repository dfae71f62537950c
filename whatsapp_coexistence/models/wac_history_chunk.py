from odoo import api, fields, models

_INT4 = (-(2**31), 2**31 - 1)


def _int4(value, low=_INT4[0], high=_INT4[1]):
    """``value`` (any int from a webhook, or ``None``) brought into an integer column."""
    return min(max(value or 0, low), high)


class WacHistoryChunk(models.Model):
    """One chunk of the coexistence history sync, as Meta numbered it.

    Meta sends the history of the last 180 days in phases (0: day 0-1, 1: day 1-90, 2: day
    90-180), each in chunks that "may not be delivered sequentially" (reference §2.3). One row per
    (phase, chunk order) shows what arrived, in which order, and how far the sync got; the
    account's progress is computed from these rows, so that no history job writes the account.
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
    declined = fields.Boolean(readonly=True,
                              help="The business turned history sharing off (error 2593109).")
    create_date = fields.Datetime("Received", readonly=True)

    _sql_constraints = [
        ("chunk_uniq", "unique(account_id, phase, chunk_order)", "A chunk is recorded once."),
    ]

    @api.model
    def _wac_record(self, account, item, imported):
        """Record one history item of ``account``: its chunk's row, created or added to (a chunk
        may come twice, in two deliveries).

        Only history jobs write these rows, one chunk at a time in their channel. A conflict
        (two jobs on one chunk) is not logged here: the event is retried quietly.

        :param item: a ``webhook_stream.HistoryItem`` (``phase``, ``chunk_order``,
            ``progress``, ``declined``)
        :param int imported: how many of its messages were stored now
        """
        self.env.cr.execute(
            """
            INSERT INTO wac_history_chunk
                   (company_id, account_id, phase, chunk_order, progress, message_count,
                    declined, create_date, write_date, create_uid, write_uid)
            VALUES (%(company)s, %(account)s, %(phase)s, %(order)s, %(progress)s,
                    %(imported)s, %(declined)s, now() at time zone 'UTC',
                    now() at time zone 'UTC', %(uid)s, %(uid)s)
            ON CONFLICT (account_id, phase, chunk_order) DO UPDATE
               SET message_count = wac_history_chunk.message_count + EXCLUDED.message_count,
                   progress = GREATEST(wac_history_chunk.progress, EXCLUDED.progress),
                   declined = wac_history_chunk.declined OR EXCLUDED.declined,
                   write_date = EXCLUDED.write_date
            """,
            {"company": account.company_id.id, "account": account.id,
             "phase": _int4(item.phase), "order": _int4(item.chunk_order),
             "progress": _int4(item.progress, 0, 100), "imported": imported,
             "declined": bool(item.declined), "uid": self.env.uid},
            log_exceptions=False)
        self.invalidate_model()
        account.invalidate_recordset(["history_chunk_ids"])
