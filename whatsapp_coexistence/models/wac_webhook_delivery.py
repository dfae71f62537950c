import hashlib
import logging
import operator
import time
from datetime import timedelta

import psycopg2

from odoo import SUPERUSER_ID, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..const import CHANNEL_WEBHOOK, PRIORITY_WEBHOOK
from ..tools.wa_cloud import signature as wa_signature
from ..tools.wa_cloud import webhook
from ..tools.wa_cloud.vault import VaultError

_logger = logging.getLogger(__name__)

# A change this large is processed in a job of its own (history chunks carry thousands of
# messages, reference §2.3); smaller ones are processed inline by the delivery's job.
INLINE_CHANGE_MAX_BYTES = 64 * 1024
# A job that processes a delivery's changes stops after about this many seconds and leaves the
# rest to a continuation of itself: Odoo kills a request that passes limit_time_real (120 s
# by default), and a killed job starts over from its first change, again and again.
JOB_SLICE_SECONDS = 20
# One dispatcher job at a time enqueues the deliveries' jobs (_wac_ensure_dispatcher).
DISPATCH_IDENTITY_KEY = "wac.webhook.delivery:dispatch"
DISPATCH_BATCH = 1000
# Each delivery's processing job, so that the minute cron can tell a live one from a dead one.
PROCESS_IDENTITY_KEY = "wac-delivery-%d"
# The job of a delivery's history chunks (all of them, in order, in the history channel).
HISTORY_IDENTITY_KEY = "wac-delivery-history-%d"

# The body is read by the jobs in slices of this many bytes (webhook_stream parses the stream).
BODY_SLICE_BYTES = 64 * 1024

# The minute cron's grace period: a delivery or event older than this without a live job was
# left behind by a crash, a cancelled job or a job out of tries.
STUCK_AFTER = timedelta(minutes=1)

# The comparisons the search view's filters may ask of the computed redelivery count.
COUNT_OPERATORS = {"=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
                   "<": operator.lt, "<=": operator.le}

DELIVERY_STATES = [
    ("received", "Received"),
    ("processing", "Processing"),
    ("done", "Processed"),
    ("partial", "Partly failed"),
    ("failed", "Failed"),
    ("ignored", "Ignored"),
]

# Store a delivery. A byte-identical redelivery stores nothing here (DO NOTHING): it never
# updates the delivery row that its first copy's job writes, and is counted elsewhere.
_STORE_SQL = """
    INSERT INTO wac_webhook_delivery
           (received_at, body, body_sha256, signature, remote_addr, size, state,
            create_date, write_date, create_uid, write_uid)
    VALUES (now() at time zone 'UTC', %(body)s, %(sha)s, %(sig)s, %(addr)s, %(size)s,
            'received', now() at time zone 'UTC', now() at time zone 'UTC', %(uid)s, %(uid)s)
    ON CONFLICT (body_sha256) DO NOTHING
    RETURNING id
"""
# Count a redelivery (a row of its own, only ever inserted) and tell whether its first copy was
# queued (one this snapshot cannot see counts as not queued: the dispatcher check is cheap).
_REDELIVERY_SQL = """
    WITH counted AS (
        INSERT INTO wac_webhook_redelivery
               (body_sha256, received_at, remote_addr, create_date, write_date, create_uid,
                write_uid)
        VALUES (%(sha)s, now() at time zone 'UTC', %(addr)s, now() at time zone 'UTC',
                now() at time zone 'UTC', %(uid)s, %(uid)s)
    )
    SELECT EXISTS (SELECT FROM wac_webhook_delivery
                    WHERE body_sha256 = %(sha)s AND dispatched_at IS NOT NULL)
"""


class _OncePerMinute:
    """Let a log line through at most once a minute per server process."""

    def __init__(self):
        self._last = None

    def __call__(self):
        now = time.monotonic()
        if self._last is not None and now - self._last < 60:
            return False
        self._last = now
        return True


_secret_warning_due = _OncePerMinute()


def no_live_job(identity_key):
    """SQL condition: no job with the identity key ``identity_key`` (an SQL expression) is
    waiting or running. Two tests, so that queue_job's partial index on the waiting ones
    serves the first."""
    return SQL(
        """NOT EXISTS (SELECT FROM queue_job j WHERE j.identity_key = %(key)s
                         AND j.state IN ('pending', 'enqueued', 'wait_dependencies'))
           AND NOT EXISTS (SELECT FROM queue_job j WHERE j.state = 'started'
                             AND j.identity_key = %(key)s)""", key=identity_key)


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
    redelivery_count = fields.Integer(compute="_compute_redelivery_count",
                                      search="_search_redelivery_count",
                                      help="Byte-identical redeliveries acknowledged.")
    state = fields.Selection(DELIVERY_STATES, default="received", readonly=True, index=True,
                             help="Processing: some of its events are processed in jobs of "
                             "their own; the minute cron closes it once they all are.")
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

    def _compute_redelivery_count(self):
        counts = self.env["wac.webhook.redelivery"].sudo()._wac_counts(
            self.mapped("body_sha256"))
        for delivery in self:
            delivery.redelivery_count = counts.get(delivery.body_sha256, 0)

    def _search_redelivery_count(self, operator, value):
        """Deliveries by their number of redeliveries (the search view's *Redelivered*)."""
        compare = COUNT_OPERATORS.get(operator)
        if compare is None or not isinstance(value, int):
            raise UserError(self.env._("Redeliveries can only be compared with a number."))
        counts = self.env["wac.webhook.redelivery"].sudo()._wac_counts(None)
        matching = [sha for sha, count in counts.items() if compare(count, value)]
        if compare(0, value):  # deliveries never redelivered match too
            return ["|", ("body_sha256", "in", matching), ("body_sha256", "not in", list(counts))]
        return [("body_sha256", "in", matching)]

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

        Fails closed: without an App Secret nothing is accepted, and an App Secret that the
        configured keys cannot decrypt answers 503 (Meta retries for days: nothing is lost
        once the key is back). A byte-identical redelivery is acknowledged without being
        processed again.
        """
        try:
            secret = self.env["wac.vault"]._app_secret()
        except VaultError as error:
            if _secret_warning_due():
                _logger.error("WhatsApp webhooks answered 503: the App Secret cannot be "
                              "decrypted (%s). See the readiness tab of the accounts.", error)
            return 503, "unavailable"
        if not secret:
            self._wac_reject(remote_addr, len(raw), "no_secret")
            return 403, "forbidden"
        if not wa_signature.verify(raw, signature_header, secret):
            self._wac_reject(remote_addr, len(raw),
                             "bad_signature" if signature_header else "missing_signature")
            return 403, "forbidden"
        try:
            webhook.decode_body(raw)
        except webhook.PayloadError:
            self._wac_reject(remote_addr, len(raw), "bad_json")
            return 400, "invalid json"
        stored, dispatched = self._wac_store(raw, signature_header, remote_addr)
        if not dispatched:
            # A redelivery of a delivery not queued yet heals a lost dispatch as well.
            self._wac_ensure_dispatcher()
        return 200, "ok" if stored else "duplicate"

    @api.model
    def _wac_store(self, raw, signature_header, remote_addr):
        """Store the delivery, or count a redelivery; commit. Return ``(stored, dispatched)``.

        A copy whose first copy was committed by a concurrent request after this
        transaction's snapshot makes PostgreSQL raise a serialization failure, even with
        ``DO NOTHING`` (REPEATABLE READ): that can only mean the body is stored, so it is
        counted as a redelivery in a new transaction, without Odoo replaying the request.
        """
        params = {"body": raw.decode("utf-8"), "sha": hashlib.sha256(raw).hexdigest(),
                  "sig": signature_header, "addr": remote_addr, "size": len(raw),
                  "uid": self.env.uid}
        cr = self.env.cr
        try:
            cr.execute(_STORE_SQL, params, log_exceptions=False)
            stored = bool(cr.fetchone())
        except psycopg2.errors.SerializationFailure:
            cr.rollback()
            stored = False
        dispatched = False
        if not stored:
            cr.execute(_REDELIVERY_SQL, params)
            dispatched = cr.fetchone()[0]
        # Store first: once this commit returns the delivery is durable, whatever happens next.
        # It is also what makes the dispatcher check race-free (_wac_ensure_dispatcher).
        cr.commit()  # pylint: disable=invalid-commit
        return stored, dispatched

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
            channel=CHANNEL_WEBHOOK, priority=PRIORITY_WEBHOOK, identity_key=DISPATCH_IDENTITY_KEY,
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
        self.with_user(SUPERUSER_ID).browse(ids)._wac_enqueue()
        if ids:
            self.env.cr.execute(
                "UPDATE wac_webhook_delivery SET dispatched_at = now() at time zone 'UTC'"
                " WHERE id = ANY(%s)", [ids])
            self.invalidate_model(["dispatched_at"])
        if len(ids) == DISPATCH_BATCH:
            self._wac_ensure_dispatcher()
        return len(ids)

    def _wac_enqueue(self):
        for delivery in self:
            delivery.with_delay(
                channel=CHANNEL_WEBHOOK, priority=PRIORITY_WEBHOOK,
                identity_key=PROCESS_IDENTITY_KEY % delivery.id,
                description="WhatsApp webhook delivery %d" % delivery.id,
            )._wac_process()

    @api.model
    def _wac_cron_dispatch(self):
        """Safety net, every minute: queue what no dispatcher took, and end in a recorded state
        what a crash, a cancelled job or a job out of tries left behind."""
        self._wac_dispatch(older_than=STUCK_AFTER)
        self._wac_fail_abandoned()
        self.env["wac.webhook.event"]._wac_fail_abandoned()
        self.env["wac.webhook.event"].flush_model(["state"])
        self.env.cr.execute(
            """
            SELECT d.id FROM wac_webhook_delivery d
             WHERE d.state = 'processing'
               AND NOT EXISTS (SELECT FROM wac_webhook_event e
                                WHERE e.delivery_id = d.id AND e.state = 'pending')
             LIMIT %s
            """, [DISPATCH_BATCH])
        self.browse([row[0] for row in self.env.cr.fetchall()])._wac_settle()

    def _wac_fail_abandoned(self):
        """Mark failed the deliveries queued a while ago whose job will never run."""
        self.env.cr.execute(SQL(
            """
            SELECT d.id FROM wac_webhook_delivery d
             WHERE d.state = 'received'
               AND d.dispatched_at < now() at time zone 'UTC' - %(age)s
               AND %(no_live_job)s
             LIMIT %(limit)s
            """, age=STUCK_AFTER, limit=DISPATCH_BATCH,
            no_live_job=no_live_job(SQL("'wac-delivery-' || d.id"))))
        abandoned = self.browse([row[0] for row in self.env.cr.fetchall()])
        reasons = self.env["wac.webhook.event"]._wac_last_job_errors(
            [PROCESS_IDENTITY_KEY % delivery.id for delivery in abandoned])
        for delivery in abandoned:
            delivery.write({"state": "failed", "error": self.env._(
                "Its processing job ended without processing it (%(reason)s). Reprocess it.",
                reason=reasons.get(PROCESS_IDENTITY_KEY % delivery.id)
                or self.env._("the job is gone"))})
        return abandoned
