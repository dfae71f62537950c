from odoo import api, fields, models


class WacWebhookRedelivery(models.Model):
    """One byte-identical copy of a stored delivery, acknowledged and not processed again.

    Kept apart from ``wac.webhook.delivery`` on purpose: a redelivery only ever inserts a row
    here, so it never updates the delivery row that its first copy's job is writing (under
    REPEATABLE READ that update was a serialization failure, and Odoo's replay of the request
    then answered Meta 403). Rows are only inserted, so concurrent copies never conflict.
    """

    _name = "wac.webhook.redelivery"
    _description = "WhatsApp Coexistence webhook redelivery"
    _order = "id desc"
    _rec_name = "body_sha256"

    body_sha256 = fields.Char("Body SHA-256", required=True, readonly=True, index=True)
    received_at = fields.Datetime(readonly=True)
    remote_addr = fields.Char("Source address", readonly=True)

    @api.model
    def _wac_counts(self, hashes):
        """``{body_sha256: number of redeliveries}`` for ``hashes`` (``None``: every body)."""
        domain = [] if hashes is None else [("body_sha256", "in", list(hashes))]
        return dict(self._read_group(domain, ["body_sha256"], ["__count"]))
