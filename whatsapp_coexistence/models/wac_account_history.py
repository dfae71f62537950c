"""The progress of a company's coexistence history sync, as its account shows it.

Apart from ``wac_account.py`` (connection, lifecycle, readiness): the figures are computed
from ``wac.history.chunk`` rows and only the request date is stored on the account.
"""

from odoo import api, fields, models


class WacAccount(models.Model):
    _inherit = "wac.account"  # pylint: disable=consider-merging-classes-inherited

    # Coexistence synchronization --------------------------------------------------------------
    # The history sync's progress is read from its chunks (wac.history.chunk), never written
    # here: history jobs would otherwise all write this row, and each other's serialization
    # failures (account updates, errors, sends write it too).
    history_requested_on = fields.Datetime(readonly=True, copy=False)
    history_state = fields.Selection(
        [("none", "Not requested"), ("requested", "Requested"), ("importing", "Importing"),
         ("done", "Complete"), ("declined", "Declined by the business")],
        compute="_compute_history", inverse="_inverse_history_state", readonly=True)
    history_phase = fields.Integer(compute="_compute_history")
    history_progress = fields.Integer("History progress (%)", compute="_compute_history")
    history_chunks = fields.Integer("History chunks received", compute="_compute_history")
    history_messages = fields.Integer("History messages imported",
                                      compute="_compute_history")
    history_chunk_ids = fields.One2many("wac.history.chunk", "account_id", readonly=True)

    @api.depends("history_requested_on", "history_chunk_ids.phase",
                 "history_chunk_ids.progress", "history_chunk_ids.message_count",
                 "history_chunk_ids.declined")
    def _compute_history(self):
        stats = {account: rest for account, *rest in
                 self.env["wac.history.chunk"].sudo()._read_group(
                     [("account_id", "in", self.ids)], ["account_id"],
                     ["__count", "phase:max", "progress:max", "message_count:sum",
                      "declined:bool_or"])}
        for account in self:
            chunks, phase, progress, messages, declined = stats.get(
                account, (0, 0, 0, 0, False))
            if declined:
                state = "declined"
            elif chunks:
                state = "done" if progress >= 100 else "importing"
            else:
                state = "requested" if account.history_requested_on else "none"
            account.update({"history_state": state, "history_chunks": chunks,
                            "history_phase": phase or 0, "history_progress": progress or 0,
                            "history_messages": messages or 0})

    def _inverse_history_state(self):
        # Onboarding says when the sync was requested; the rest comes from the chunks.
        for account in self.filtered(lambda a: a.history_state == "requested"):
            account.history_requested_on = fields.Datetime.now()
