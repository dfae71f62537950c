import logging
import time

from odoo import api, fields, models
from odoo.sql_db import TestCursor

from ..tools.wa_cloud.pacing import Limit, reserve

_logger = logging.getLogger(__name__)


def _read_committed(cr):
    """Run this short transaction in READ COMMITTED.

    Odoo's cursors are REPEATABLE READ: there, locking a bucket that another worker updated
    after our snapshot fails with a serialization error instead of waiting for its new value.
    (A test cursor shares the test's transaction, already started, and needs no such care.)
    """
    if not isinstance(cr, TestCursor):
        cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")


def reserve_slot(cr, limits, max_wait, commit=True):
    """Reserve a sending slot on ``cr`` and commit it; the core of :class:`WacRateBucket`.

    Each limit is one ``wac_rate_bucket`` row: its ``tat`` (theoretical arrival time) is read
    with ``SELECT ... FOR UPDATE`` in key order (a fixed lock order, so two workers never
    deadlock), the slot is computed by :func:`~..tools.wa_cloud.pacing.reserve`, and the new
    states are written and committed before anything is sent. The clock is PostgreSQL's
    (``clock_timestamp()``), shared by every worker and server.

    :param cr: a cursor of its own (never a job's cursor: it is committed here)
    :param limits: ``[(key, rate_per_s, burst, company_id)]``
    :param float max_wait: longest wait accepted; beyond it nothing is reserved
    :param bool commit: commit the reservation here; ``False`` lets the caller add to this
        transaction and commit it (the reserved slot is then held until that commit)
    :returns: ``(allowed, wait_seconds, slot)``, ``slot`` in epoch seconds (database clock)
    """
    limits = sorted(limits)
    if not limits:
        return True, 0.0, None
    _read_committed(cr)
    keys = [key for key, *_rest in limits]
    cr.execute(
        """
        INSERT INTO wac_rate_bucket (key, company_id)
        SELECT k, c FROM unnest(%s::varchar[], %s::int[]) AS t(k, c)
        ON CONFLICT (key) DO NOTHING
        """,
        (keys, [company_id for *_r, company_id in limits]))
    cr.execute(
        "SELECT key, tat FROM wac_rate_bucket WHERE key = ANY(%s) ORDER BY key FOR UPDATE",
        (keys,))
    tats = dict(cr.fetchall())
    cr.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8")
    now = cr.fetchone()[0]
    result = reserve([Limit(tats.get(key), rate, burst) for key, rate, burst, _c in limits],
                     now, max_wait)
    if not result.allowed:
        cr.rollback()
        return False, result.wait, result.slot
    cr.execute(
        """
        UPDATE wac_rate_bucket b SET tat = t.tat
        FROM unnest(%s::varchar[], %s::float8[]) AS t(key, tat) WHERE b.key = t.key
        """,
        (keys, list(result.new_tats)))
    if commit:
        cr.commit()
    return True, result.wait, result.slot


class WacRateBucket(models.Model):
    """Rate-limit state shared by every Odoo worker and server: one row per limited key.

    Keys are ``company:<id>`` (the number's throughput, 20 messages/s for coexistence numbers)
    and ``pair:<company id>:<phone key>`` (spacing between two messages to one person, Meta's
    pair rate limit 131056). ``tat`` is the GCRA's theoretical arrival time in epoch seconds.
    """

    _name = "wac.rate.bucket"
    _description = "WhatsApp Coexistence rate-limit state"
    _log_access = False
    _rec_name = "key"

    key = fields.Char(required=True, index=True)
    company_id = fields.Many2one("res.company", index=True, ondelete="cascade")
    tat = fields.Float("Next slot (epoch seconds)")

    _sql_constraints = [("key_uniq", "unique(key)", "One state per rate-limit key.")]

    @api.model
    def _wac_reserve(self, limits, max_wait=1.0, sleep=True):
        """Reserve the next slot allowed by every limit, in a short transaction of its own.

        When the slot is at most ``max_wait`` seconds away it is reserved, and (with
        ``sleep``) this method sleeps until then: senders leave in slot order and the rate is
        never exceeded. Otherwise nothing is reserved and the wait is returned, for the caller
        to postpone its job.

        :param limits: ``[(key, rate_per_s, burst, company_id)]``
        :returns: ``(allowed, wait_seconds)``
        """
        with self.env.registry.cursor() as cr:
            allowed, wait, _slot = reserve_slot(cr, limits, max_wait)
        if allowed and sleep and wait > 0:
            time.sleep(wait)
        return allowed, wait

    @api.model
    def _wac_push_back(self, key, seconds, company_id=None):
        """Move a key's next slot at least ``seconds`` into the future (Meta said 130429 or
        131056: every worker backs off, not only the one that was told)."""
        with self.env.registry.cursor() as cr:
            _read_committed(cr)
            cr.execute(
                """
                INSERT INTO wac_rate_bucket (key, company_id, tat)
                VALUES (%s, %s, EXTRACT(EPOCH FROM clock_timestamp()) + %s)
                ON CONFLICT (key) DO UPDATE SET tat = GREATEST(
                    COALESCE(wac_rate_bucket.tat, 0), EXCLUDED.tat)
                """,
                (key, company_id, float(seconds)))
