import hashlib
import itertools
import json
import logging
from datetime import timedelta

import psycopg2

from odoo import SUPERUSER_ID, api, fields, models
from odoo.tools import SQL

from ..tools.wa_cloud import signature as wa_signature
from ..tools.wa_cloud import webhook_stream
from ..tools.wa_cloud.errors import sanitize

_logger = logging.getLogger(__name__)

# A change this large is processed in a job of its own (history chunks carry thousands of
# messages, reference §2.3); smaller ones are processed inline by the delivery's job.
INLINE_CHANGE_MAX_BYTES = 64 * 1024
HISTORY_CHANNEL = "root.whatsapp.history"
# One dispatcher job at a time enqueues the deliveries' jobs (_wac_ensure_dispatcher).
DISPATCH_IDENTITY_KEY = "wac.webhook.delivery:dispatch"
DISPATCH_BATCH = 1000

# The body is read by the jobs in slices of this many bytes (webhook_stream parses the stream).
BODY_SLICE_BYTES = 64 * 1024

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
    # Read in slices by the jobs (_wac_open_body), never loaded with the other fields.
    body = fields.Text(readonly=True, prefetch=False)
    body_sha256 = fields.Char("Body SHA-256", readonly=True, required=True)
    signature = fields.Char("Signature header", readonly=True)
    remote_addr = fields.Char("Source address", readonly=True)
    size = fields.Integer("Size (bytes)", readonly=True)
    redelivery_count = fields.Integer(readonly=True, help="Byte-identical redeliveries ignored.")
    state = fields.Selection(DELIVERY_STATES, default="received", readonly=True, index=True)
    error = fields.Text(readonly=True)
    dispatched_at = fields.Datetime(
        "Queued at", readonly=True, help="When the delivery's processing job was enqueued.")
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
            RETURNING xmax = 0, dispatched_at IS NOT NULL
            """,
            {"body": text, "sha": hashlib.sha256(raw).hexdigest(), "sig": signature_header,
             "addr": remote_addr, "size": len(raw), "uid": self.env.uid},
        )
        inserted, dispatched = self.env.cr.fetchone()
        # Store first: once this commit returns the delivery is durable, whatever happens next.
        # It is also what makes the dispatcher check below race-free (_wac_ensure_dispatcher).
        self.env.cr.commit()  # pylint: disable=invalid-commit
        if not dispatched:
            # A redelivery of a delivery not queued yet heals a lost dispatch as well.
            self._wac_ensure_dispatcher()
        return 200, "ok" if inserted else "duplicate"

    # ------------------------------------------------------------
    # DISPATCH (one queue job per delivery, enqueued outside the request)
    # ------------------------------------------------------------

    @api.model
    def _wac_ensure_dispatcher(self):
        """Make sure a dispatcher job will see every delivery committed so far.

        Enqueuing a job costs about as much as the rest of the request (queue_job's ORM
        create, bench/README.md), so Meta's requests only enqueue the dispatcher when none is
        waiting. Race-free because the caller has committed its delivery before this check: a
        dispatcher seen ``pending`` or ``enqueued`` has not started, and queue_job commits
        ``started`` before the job runs, so the job's snapshot includes that delivery. Anything
        left behind anyway (the dispatcher failed, a crash between the two commits) is picked
        up by the minute cron, :meth:`_wac_cron_dispatch`.
        """
        self.env.cr.execute(
            "SELECT 1 FROM queue_job WHERE identity_key = %s AND state IN ('pending', 'enqueued')"
            " LIMIT 1", [DISPATCH_IDENTITY_KEY])
        if self.env.cr.rowcount:
            return
        # Jobs run as OdooBot, not as the public user of the request: their notes and the
        # managers' activities then have a real author. queue_job stores env.company on the
        # job: load the one column it needs, not OdooBot's whole res.users row.
        dispatcher = self.with_user(SUPERUSER_ID)
        dispatcher.env.user.fetch(["company_id"])
        dispatcher.with_delay(
            channel="root.whatsapp", identity_key=DISPATCH_IDENTITY_KEY,
            description="WhatsApp webhook dispatcher",
        )._wac_dispatch()

    @api.model
    def _wac_dispatch(self, older_than=None):
        """Enqueue one processing job per delivery received and not queued yet."""
        older = "AND received_at < now() at time zone 'UTC' - %(age)s" if older_than else ""
        self.env.cr.execute(
            f"""
            SELECT id FROM wac_webhook_delivery
             WHERE state = 'received' AND dispatched_at IS NULL {older}
             ORDER BY id LIMIT %(limit)s
               FOR UPDATE SKIP LOCKED
            """, {"age": older_than, "limit": DISPATCH_BATCH})
        ids = [row[0] for row in self.env.cr.fetchall()]
        for delivery in self.with_user(SUPERUSER_ID).browse(ids):
            delivery.with_delay(
                channel="root.whatsapp", description="WhatsApp webhook delivery %d" % delivery.id,
            )._wac_process()
        if ids:
            self.env.cr.execute(
                "UPDATE wac_webhook_delivery SET dispatched_at = now() at time zone 'UTC'"
                " WHERE id = ANY(%s)", [ids])
            self.invalidate_model(["dispatched_at"])
        if len(ids) == DISPATCH_BATCH:
            self._wac_ensure_dispatcher()
        return len(ids)

    @api.model
    def _wac_cron_dispatch(self):
        """Safety net: queue what no dispatcher took within a minute."""
        self._wac_dispatch(older_than=timedelta(minutes=1))

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
                # Streamed: a history change's messages stay in the body (its history job
                # reads them from there), everything else is decoded as usual.
                changes = webhook_stream.parse_body(self._wac_open_body)
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

    def _wac_open_body(self):
        """The body as a new binary stream, read from the database one slice at a time."""
        self.ensure_one()
        return _BodyReader(self.env.cr, self.id)

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


class _BodyReader(webhook_stream.SliceReader):
    """The ``body`` of one delivery as UTF-8 bytes, :data:`BODY_SLICE_BYTES` at a time.

    A server-side cursor returns the slices: the body is decoded once in PostgreSQL and sliced
    by bytes there. ``substring(body FROM n FOR m)`` per slice counts characters, so
    PostgreSQL walks the text from its start at every call: 0.40 s for the 41 slices of a
    2.6 MB body, against 0.03 s through the cursor (measured on the dev cluster). The cursor
    lives in the job's transaction; :meth:`close` closes it early.
    """

    _names = itertools.count(1)

    def __init__(self, cr, delivery_id):
        super().__init__()
        self._cr = cr
        self._cursor_name = "wac_body_%d_%d" % (delivery_id, next(self._names))
        self._name = SQL.identifier(self._cursor_name)
        cr.execute(SQL(
            """
            DECLARE %(name)s NO SCROLL CURSOR FOR
              WITH delivery AS MATERIALIZED (
                   SELECT convert_to(body, 'UTF8') AS bytes
                     FROM wac_webhook_delivery WHERE id = %(id)s)
            SELECT substring(delivery.bytes FROM start FOR %(size)s)
              FROM delivery, generate_series(1, octet_length(delivery.bytes), %(size)s) AS start
             ORDER BY start
            """, name=self._name, id=delivery_id, size=BODY_SLICE_BYTES))
        self._open = True

    def _next_slice(self):
        if not self._open:
            return b""
        self._cr.execute(SQL("FETCH NEXT FROM %s", self._name))
        row = self._cr.fetchone()
        if row is None:
            self.close()
            return b""
        return bytes(row[0])

    def close(self):
        """Close the cursor if it is still open (a rolled back savepoint closed it already)."""
        if not self._open:
            return
        self._open = False
        try:
            self._cr.execute("SELECT 1 FROM pg_cursors WHERE name = %s", [self._cursor_name],
                             log_exceptions=False)
        except psycopg2.errors.InFailedSqlTransaction:
            return  # the transaction is rolled back, the cursor with it
        if self._cr.rowcount:
            self._cr.execute(SQL("CLOSE %s", self._name))
