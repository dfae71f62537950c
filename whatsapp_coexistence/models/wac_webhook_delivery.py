import hashlib
import json
import logging

from odoo import SUPERUSER_ID, api, fields, models

from ..tools.wa_cloud import signature as wa_signature
from ..tools.wa_cloud import webhook
from ..tools.wa_cloud.errors import sanitize

_logger = logging.getLogger(__name__)

# A change this large is processed in a job of its own (history chunks carry thousands of
# messages, reference §2.3); smaller ones are processed inline by the delivery's job.
INLINE_CHANGE_MAX_BYTES = 64 * 1024
HISTORY_CHANNEL = "root.whatsapp.history"

DELIVERY_STATES = [
    ("received", "Received"),
    ("done", "Processed"),
    ("partial", "Partly failed"),
    ("failed", "Failed"),
    ("ignored", "Ignored"),
]


class WacWebhookDelivery(models.Model):
    """One signed POST from Meta, stored byte for byte before anything else happens.

    Meta retries for seven days and redelivers the same bytes, so the SHA-256 of the body is a
    unique key: a redelivery only increments a counter. Deliveries mix companies (one Meta app
    serves every tenant), so they are readable by system administrators only; each company sees
    its own ``wac.webhook.event`` rows.
    """

    _name = "wac.webhook.delivery"
    _description = "WhatsApp Coexistence webhook delivery"
    _order = "id desc"
    _rec_name = "body_sha256"

    received_at = fields.Datetime(readonly=True, index=True)
    body = fields.Text(readonly=True)
    body_sha256 = fields.Char("Body SHA-256", readonly=True, required=True)
    signature = fields.Char("Signature header", readonly=True)
    remote_addr = fields.Char("Source address", readonly=True)
    size = fields.Integer("Size (bytes)", readonly=True)
    redelivery_count = fields.Integer(readonly=True, help="Byte-identical redeliveries ignored.")
    state = fields.Selection(DELIVERY_STATES, default="received", readonly=True, index=True)
    error = fields.Text(readonly=True)
    event_ids = fields.One2many("wac.webhook.event", "delivery_id", readonly=True)
    event_count = fields.Integer(compute="_compute_event_count")

    _sql_constraints = [
        ("body_sha256_uniq", "unique(body_sha256)", "This delivery was already received."),
    ]

    def _compute_event_count(self):
        counts = dict(self.env["wac.webhook.event"]._read_group(
            [("delivery_id", "in", self.ids)], ["delivery_id"], ["__count"]))
        for delivery in self:
            delivery.event_count = counts.get(delivery, 0)

    # ------------------------------------------------------------
    # INGEST (request time: keep it short)
    # ------------------------------------------------------------

    @api.model
    def _wac_reject(self, remote_addr, size, reason):
        self.env["wac.webhook.rejection"]._wac_count(remote_addr, size, reason)
        _logger.warning("WhatsApp webhook refused from %s (%s, %d bytes).", remote_addr, reason,
                        size or 0)

    @api.model
    def _wac_ingest(self, raw, signature_header, remote_addr):
        """Authenticate ``raw`` and store it; return ``(http_status, reason)``.

        Fails closed: without an App Secret nothing is accepted. A byte-identical redelivery is
        acknowledged without being processed again.
        """
        secret = self.env["wac.account"]._wac_app_secret()
        if not secret:
            self._wac_reject(remote_addr, len(raw), "no_secret")
            return 403, "forbidden"
        if not wa_signature.verify(raw, signature_header, secret):
            self._wac_reject(remote_addr, len(raw),
                             "bad_signature" if signature_header else "missing_signature")
            return 403, "forbidden"
        try:
            text = raw.decode("utf-8")
            if not isinstance(json.loads(text), dict):
                raise ValueError("not an object")
        except ValueError:
            self._wac_reject(remote_addr, len(raw), "bad_json")
            return 400, "invalid json"
        self.env.cr.execute(
            """
            INSERT INTO wac_webhook_delivery
                   (received_at, body, body_sha256, signature, remote_addr, size, state,
                    redelivery_count, create_date, write_date, create_uid, write_uid)
            VALUES (now() at time zone 'UTC', %(body)s, %(sha)s, %(sig)s, %(addr)s, %(size)s,
                    'received', 0, now() at time zone 'UTC', now() at time zone 'UTC',
                    %(uid)s, %(uid)s)
            ON CONFLICT (body_sha256) DO UPDATE
               SET redelivery_count = wac_webhook_delivery.redelivery_count + 1
            RETURNING id, xmax = 0
            """,
            {"body": text, "sha": hashlib.sha256(raw).hexdigest(), "sig": signature_header,
             "addr": remote_addr, "size": len(raw), "uid": self.env.uid},
        )
        delivery_id, inserted = self.env.cr.fetchone()
        if not inserted:
            return 200, "duplicate"
        # The job runs as OdooBot, not as the public user of the request: its notes and the
        # managers' activities then have a real author.
        delivery = self.with_user(SUPERUSER_ID).browse(delivery_id)
        # queue_job stores env.company on the job. Every request starts with an empty cache, and
        # reading it loaded OdooBot's whole res.users row: load the one column it needs.
        delivery.env.user.fetch(["company_id"])
        # No identity_key: the row was inserted just now (xmax = 0), so no job can exist for it
        # yet, and queue_job's lookup of an identical pending job is one ORM search per POST
        # (about a fifth of the enqueue's cost, bench/README.md) that could never match.
        delivery.with_delay(
            channel="root.whatsapp", description="WhatsApp webhook delivery %d" % delivery_id,
        )._wac_process()
        return 200, "ok"

    # ------------------------------------------------------------
    # PROCESSING (queue_job)
    # ------------------------------------------------------------

    def _wac_process(self):
        """Split the delivery into one event per change, route and process each of them.

        Idempotent: events are only created once per delivery, and processing an event twice
        changes nothing (every object has its own key).
        """
        self.ensure_one()
        if not self.event_ids:
            try:
                changes = webhook.parse_payload(json.loads(self.body))
            except ValueError as error:
                # Signed by Meta but not a WhatsApp payload: kept, visible, never an error.
                self.write({"state": "ignored", "error": sanitize(str(error))})
                return
            self.env["wac.webhook.event"]._wac_create_from_changes(self, changes)
        for event in self.event_ids.filtered(lambda e: e.state == "pending"):
            if event.field == "history":
                # History chunks of one sync share the account's progress and the same
                # contacts: a channel of capacity 1 imports them one after the other.
                event._wac_enqueue(channel=HISTORY_CHANNEL)
            elif len(event.payload or "") > INLINE_CHANGE_MAX_BYTES:
                event._wac_enqueue()
            else:
                event._wac_process_safely()
        self._wac_update_state()

    def _wac_update_state(self):
        for delivery in self:
            states = set(delivery.event_ids.mapped("state"))
            if "failed" in states:
                delivery.state = "failed" if states == {"failed"} else "partial"
            elif "pending" in states:
                delivery.state = "received"
            else:
                delivery.state = "done"

    def action_reprocess(self):
        """Process the failed and pending events of these deliveries again."""
        self.event_ids.filtered(lambda e: e.state in ("failed", "pending", "unroutable")) \
            .action_reprocess()
        return True
