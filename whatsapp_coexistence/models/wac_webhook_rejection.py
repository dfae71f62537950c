from odoo import api, fields, models

REJECTION_REASONS = [
    ("no_secret", "No App Secret configured"),
    ("missing_signature", "Missing signature"),
    ("bad_signature", "Wrong signature"),
    ("bad_json", "Invalid JSON"),
    ("too_large", "Body too large"),
]


class WacWebhookRejection(models.Model):
    """Webhook POSTs that were refused, counted per hour, source address and reason.

    Bodies are never stored: a refused delivery is unauthenticated input. Counting in hourly
    buckets keeps a forged flood from growing the table one row per request.
    """

    _name = "wac.webhook.rejection"
    _description = "WhatsApp Coexistence refused webhook"
    _order = "last_seen desc"
    _rec_name = "reason"

    hour = fields.Datetime(required=True, readonly=True, index=True)
    remote_addr = fields.Char("Source address", readonly=True)
    reason = fields.Selection(REJECTION_REASONS, required=True, readonly=True)
    count = fields.Integer(readonly=True, default=1)
    last_size = fields.Integer("Last size (bytes)", readonly=True)
    last_seen = fields.Datetime(readonly=True)

    _sql_constraints = [
        ("bucket_uniq", "unique(hour, remote_addr, reason)",
         "One row per hour, source and reason."),
    ]

    @api.model
    def _wac_count(self, remote_addr, size, reason):
        self.env.cr.execute(
            """
            INSERT INTO wac_webhook_rejection
                   (hour, remote_addr, reason, count, last_size, last_seen,
                    create_date, write_date, create_uid, write_uid)
            VALUES (date_trunc('hour', now() at time zone 'UTC'), %(addr)s, %(reason)s, 1,
                    %(size)s, now() at time zone 'UTC', now() at time zone 'UTC',
                    now() at time zone 'UTC', %(uid)s, %(uid)s)
            ON CONFLICT (hour, remote_addr, reason) DO UPDATE
               SET count = wac_webhook_rejection.count + 1,
                   last_size = EXCLUDED.last_size,
                   last_seen = EXCLUDED.last_seen
            """,
            {"addr": remote_addr or "", "reason": reason, "size": size, "uid": self.env.uid},
            # Refusals from one source in the same hour update one row: a conflict is a
            # serialization failure that Odoo retries (the request's body is kept for it).
            log_exceptions=False,
        )
