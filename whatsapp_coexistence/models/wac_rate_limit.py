import json
import logging
import math
import time
from datetime import timedelta
from typing import NamedTuple

import psycopg2
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

from odoo import api, fields, models

from odoo.addons.queue_job.exception import RetryableJobError

from ..tools.wa_cloud import phone as wa_phone
from ..tools.wa_cloud.pacing import Limit, Window, reserve, restamp

_logger = logging.getLogger(__name__)

#: A send never waits longer than this in-process for its slot; beyond it the job is
#: postponed. Short, so a worker is never held long.
MAX_SLEEP = 1.0
#: Up to this wait, the slot and the intent are committed together (one transaction less).
SAME_TRANSACTION_WAIT = 0.005
#: The company's cap is held over windows of 1 / RATE_SAFETY seconds: a send reaches Meta a few
#: milliseconds after its slot, and the margin keeps any one-second window under the cap as
#: Meta measures it.
RATE_SAFETY = 0.97
#: A send that leaves later than this after its slot moves its slot in the company's window to
#: when it really left (``pacing.restamp``). Most sends leave a few milliseconds late, which
#: the window's margin absorbs; a slow commit or a descheduled worker can make one leave much
#: later, and it would let the message N slots after it reach Meta less than a second later.
RESTAMP_TOLERANCE = 0.015


def read_committed(cr):
    """Run this short transaction in READ COMMITTED.

    Odoo's cursors are REPEATABLE READ: there, locking a bucket that another worker updated
    after our snapshot fails with a serialization error instead of waiting for its new value.
    PostgreSQL lets only a transaction's first statement choose its level, so a cursor whose
    transaction is already under way (one sharing an outer transaction) keeps its own.
    """
    if cr.connection.get_transaction_status() == TRANSACTION_STATUS_IDLE:
        cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")


class LimitSpec(NamedTuple):
    """One limit of a send, as :func:`reserve_slot` takes it.

    :ivar key: the ``wac_rate_bucket`` key
    :ivar rate: messages per second
    :ivar burst: GCRA burst (ignored by a window)
    :ivar company_id: owner of the bucket row
    :ivar window: ``None`` for a GCRA (even spacing); for a cap held in every one-second
        window (:class:`~..tools.wa_cloud.pacing.Window`), the window's margin (>= 1)
    """

    key: str
    rate: float
    burst: int = 1
    company_id: int | None = None
    window: float | None = None

    def limit(self, tat, recent):
        if self.window:
            return Window.for_rate(json.loads(recent or "[]"), self.rate, self.window,
                                   not_before=tat)
        return Limit(tat, self.rate, self.burst)


class Pace(NamedTuple):
    """When a send was due: ``due`` on this process's monotonic clock, and under the company's
    window (``key``, ``None`` without one) ``slot`` on the database clock."""

    key: str | None
    slot: float | None
    due: float

    @classmethod
    def under(cls, limits, slot, due):
        """The pace of ``slot``, reserved under ``limits``."""
        windows = [limit.key for limit in limits if limit.window]
        return cls(windows[0] if windows else None, slot, due)


class Slot(NamedTuple):
    """What :func:`reserve_slot` reserved.

    :ivar allowed: a slot is reserved (else the caller postpones)
    :ivar wait: seconds until the slot (or until the first possible one, when not allowed)
    :ivar slot: epoch seconds, database clock
    """

    allowed: bool
    wait: float
    slot: float | None


def _lock_buckets(cr, limits):
    """Lock the bucket rows of ``limits`` (sorted by key), creating the missing ones.

    :returns: ``{key: (tat, recent)}``
    """
    keys = [limit.key for limit in limits]
    lock = ("SELECT key, tat, recent FROM wac_rate_bucket WHERE key = ANY(%s) ORDER BY key"
            " FOR UPDATE")
    cr.execute(lock, (keys,))
    rows = {key: (tat, recent) for key, tat, recent in cr.fetchall()}
    if len(rows) < len(keys):  # a first message under a key: its row, then every lock
        cr.execute(
            """
            INSERT INTO wac_rate_bucket (key, company_id)
            SELECT k, c FROM unnest(%s::varchar[], %s::int[]) AS t(k, c)
            ON CONFLICT (key) DO NOTHING
            """,
            ([limit.key for limit in limits if limit.key not in rows],
             [limit.company_id for limit in limits if limit.key not in rows]))
        cr.execute(lock, (keys,))
        rows = {key: (tat, recent) for key, tat, recent in cr.fetchall()}
    return rows


def reserve_slot(cr, limits, max_wait, commit=True):
    """Reserve a sending slot on ``cr`` and commit it; the core of :class:`WacRateBucket`.

    Each limit is one ``wac_rate_bucket`` row (created by the first message under its key):
    its state (a GCRA's theoretical arrival time ``tat``, or a window's ``recent`` slots and
    ``tat`` as "not before") is read with ``SELECT ... FOR UPDATE`` in key order (a fixed lock
    order, so two workers never deadlock), the slot is computed by
    :func:`~..tools.wa_cloud.pacing.reserve`, and the new states are written and committed
    before anything is sent. The clock is PostgreSQL's
    (``clock_timestamp()``), shared by every worker and server.

    :param cr: a cursor of its own (never a job's cursor: it is committed here)
    :param limits: :class:`LimitSpec` or tuples of its fields
    :param float max_wait: longest wait accepted; beyond it nothing is reserved
    :param bool commit: commit the reservation here; ``False`` lets the caller add to this
        transaction and commit it (the reserved slot is then held until that commit)
    :returns: :class:`Slot`, ``slot`` in epoch seconds (database clock)
    """
    limits = sorted(LimitSpec(*limit) for limit in limits)
    if not limits:
        return Slot(True, 0.0, None)
    read_committed(cr)
    keys = [limit.key for limit in limits]
    rows = _lock_buckets(cr, limits)
    # The clock is read once the locks are granted: a worker that waited for another one's
    # reservation must not plan from the moment it started waiting.
    cr.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8")
    now = cr.fetchone()[0]
    result = reserve([limit.limit(*rows[limit.key]) for limit in limits], now, max_wait)
    if not result.allowed:
        cr.rollback()
        return Slot(False, result.wait, result.slot)
    # A GCRA stores its ``tat``, a window its ``recent`` slots: NULL keeps the other column.
    cr.execute(
        """
        UPDATE wac_rate_bucket b
           SET tat = COALESCE(t.tat, b.tat), recent = COALESCE(t.recent, b.recent)
          FROM unnest(%s::varchar[], %s::float8[], %s::text[]) AS t(key, tat, recent)
         WHERE b.key = t.key
        """,
        (keys,
         [None if limit.window else state for limit, state in zip(limits, result.new_tats)],
         [json.dumps(state) if limit.window else None
          for limit, state in zip(limits, result.new_tats)]))
    if commit:
        # The caller's side cursor: every worker sees the reservation before anything is sent.
        cr.commit()  # pylint: disable=invalid-commit
    return Slot(True, result.wait, result.slot)


def restamp_slot(cr, key, slot, moment):
    """Store that the message reserved at ``slot`` under the window ``key`` left at ``moment``
    (database clock), so that later slots count from then (``pacing.restamp``).

    A short transaction of its own on ``cr`` (READ COMMITTED, like a reservation), committed
    here: the row stays locked for a moment only.
    """
    read_committed(cr)
    cr.execute("SELECT recent FROM wac_rate_bucket WHERE key = %s FOR UPDATE", (key,))
    row = cr.fetchone()
    recent = tuple(json.loads(row[0])) if row and row[0] else ()
    moved = restamp(recent, slot, moment)
    if moved != recent:
        cr.execute("UPDATE wac_rate_bucket SET recent = %s WHERE key = %s",
                   (json.dumps(moved), key))
    # A side cursor of the send's own: the row stays locked for a moment only.
    cr.commit()  # pylint: disable=invalid-commit


class WacRateBucket(models.Model):
    """Rate-limit state shared by every Odoo worker and server: one row per limited key.

    Keys are ``company:<id>`` (the number's throughput, 20 messages/s for coexistence numbers)
    and ``pair:<company id>:<phone key>`` (spacing between two messages to one person, Meta's
    pair rate limit 131056). A pair key is a GCRA: ``tat`` is its theoretical arrival time in
    epoch seconds. A company key is a window (at most N messages in any second): ``recent``
    holds its last N slots, and ``tat`` is a "not before" set when Meta says to slow down.
    """

    _name = "wac.rate.bucket"
    _description = "WhatsApp Coexistence rate-limit state"
    _log_access = False
    _rec_name = "key"

    key = fields.Char(required=True, index=True)
    company_id = fields.Many2one("res.company", index=True, ondelete="cascade")
    tat = fields.Float("Next slot (epoch seconds)")
    recent = fields.Text("Recent slots", help="JSON list of the last slots (epoch seconds) of a "
                         "limit counted per window.")

    _sql_constraints = [("key_uniq", "unique(key)", "One state per rate-limit key.")]

    @api.model
    def _wac_limits(self, account, digits):
        """The rate limits of one send of ``account`` to ``digits``: the company's cap in every
        second (a window, so slots missed while the workers were busy are caught up), the
        recipient's spacing (a GCRA).

        :rtype: list[LimitSpec]
        """
        company_id = account.company_id.id
        limits = []
        if account.rate_limit_mps > 0:
            limits.append(LimitSpec("company:%d" % company_id, account.rate_limit_mps,
                                    company_id=company_id, window=1.0 / RATE_SAFETY))
        if account.recipient_spacing_s > 0:
            limits.append(LimitSpec(self._wac_pair_key(company_id, digits),
                                    1.0 / account.recipient_spacing_s, company_id=company_id))
        return limits

    @api.model
    def _wac_pair_key(self, company_id, digits):
        """The key of the spacing between two messages of a company to one number."""
        return "pair:%d:%s" % (company_id, wa_phone.canonical(digits))

    @api.model
    def _wac_take_slot(self, cr, limits, max_wait=MAX_SLEEP):
        """Reserve a slot under ``limits`` on ``cr`` (a cursor of the send's own).

        When the slot is at most ``max_wait`` (:data:`MAX_SLEEP` for a job) away it is
        reserved; beyond
        :data:`SAME_TRANSACTION_WAIT` the reservation is committed and this method sleeps
        until just before it, so that the caller's next commit (its intent) is never followed
        by a long wait. A shorter wait stays uncommitted, for the caller to commit with its
        intent.

        :returns: :class:`Pace`
        :raises RetryableJobError: the next slot is too far: the job is postponed without
            consuming a retry
        """
        reserved = reserve_slot(cr, limits, max_wait, commit=False)
        if not reserved.allowed:
            cr.rollback()
            raise RetryableJobError("Rate limit: next slot in %.1f s" % reserved.wait,
                                    seconds=max(1, math.ceil(reserved.wait)), ignore_retry=True)
        due = time.monotonic() + reserved.wait  # the slot, on this process's clock
        if reserved.wait > SAME_TRANSACTION_WAIT:
            # The send's side cursor: the slot is not held locked while this worker sleeps.
            cr.commit()  # pylint: disable=invalid-commit
            time.sleep(max(0.0, due - time.monotonic()))
        return Pace.under(limits, reserved.slot, due)

    @api.model
    def _wac_take_free_slot(self, cr, limits):
        """Reserve a slot under ``limits`` on ``cr`` when one is free at once (within
        :data:`SAME_TRANSACTION_WAIT`), uncommitted: the caller commits it together with what
        it wrote before it in the same transaction.

        :returns: :class:`Pace`, or ``None`` when the next slot is later: nothing is reserved
            and ``cr``'s transaction was rolled back, with what the caller wrote in it
        """
        reserved = reserve_slot(cr, limits, SAME_TRANSACTION_WAIT, commit=False)
        if not reserved.allowed:
            return None
        return Pace.under(limits, reserved.slot, time.monotonic() + reserved.wait)

    @api.model
    def _wac_restamp(self, cr, pace, left):
        """A send that left at ``left`` (monotonic clock) much later than its slot moves its
        slot in the company's window to when it really left (:data:`RESTAMP_TOLERANCE`)."""
        if not pace.key or left - pace.due <= RESTAMP_TOLERANCE:
            return
        try:
            restamp_slot(cr, pace.key, pace.slot, pace.slot + left - pace.due)
        except psycopg2.Error:
            # Only the window's precision is lost; the message is recorded.
            cr.rollback()
            _logger.warning("Could not restamp the slot of %s", pace.key, exc_info=True)

    @api.model
    def _wac_daily_cap_refusal(self, account, contact, number, message):
        """Why the account's daily cap per recipient stops one more business-initiated
        message to ``contact``, or ``None``.

        Counted: the messages the business starts, automated appointment messages and
        templates a person sent after the customer's window closed; not a person's answers
        inside the window (the policy: ``wac_conversation_cap.py``).

        :param message: the send's own row, if an earlier attempt left one (not counted)
        """
        if not (contact and account.recipient_daily_cap):
            return None
        count = self.env["wac.message"].search_count([
            ("company_id", "=", account.company_id.id), ("contact_id", "=", contact.id),
            ("direction", "=", "out"), ("source", "=", "api"),
            "|", ("res_model", "=", "calendar.event"), ("reply_outside_window", "=", True),
            ("create_date", ">=", fields.Datetime.now() - timedelta(days=1)),
            # Held and dropped messages have not gone (a held one counts when it goes).
            ("status", "not in", ("failed", "dry_run", "withdrawn", "held", "dropped")),
            ("id", "!=", message.id or 0)])
        if count < account.recipient_daily_cap:
            return None
        return self.env._("Daily cap reached: %(count)s messages started by the business "
                          "(automated, or templates outside the customer's 24 h window) to "
                          "%(number)s in 24 hours.", count=count, number=number)

    @api.model
    def _wac_push_back(self, key, seconds, company_id=None):
        """Move a key's next slot at least ``seconds`` into the future (Meta said 130429 or
        131056: every worker backs off, not only the one that was told)."""
        with self.env.registry.cursor() as cr:
            read_committed(cr)
            cr.execute(
                """
                INSERT INTO wac_rate_bucket (key, company_id, tat)
                VALUES (%s, %s, EXTRACT(EPOCH FROM clock_timestamp()) + %s)
                ON CONFLICT (key) DO UPDATE SET tat = GREATEST(
                    COALESCE(wac_rate_bucket.tat, 0), EXCLUDED.tat)
                """,
                (key, company_id, float(seconds)))
