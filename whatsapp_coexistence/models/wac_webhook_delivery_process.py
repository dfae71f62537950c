"""Processing a stored delivery in queue jobs: its changes inline in 20 s slices, its history
chunks in a job of their own, what meets another job's work in a continuation.

Part of ``wac.webhook.delivery`` (``wac_webhook_delivery.py`` stores and dispatches it); the
units of a change and how their errors are classified are in ``wac_webhook_units.py``.
"""

import io
import itertools
import logging
import time

import psycopg2

from odoo import fields, models
from odoo.tools import SQL

from odoo.addons.queue_job.exception import RetryableJobError

from ..const import CHANNEL_HISTORY, CHANNEL_WEBHOOK, PRIORITY_WEBHOOK
from ..tools.wa_cloud import webhook, webhook_stream
from ..tools.wa_cloud.errors import sanitize
from .wac_webhook_delivery import (
    BODY_SLICE_BYTES,
    HISTORY_IDENTITY_KEY,
    INLINE_CHANGE_MAX_BYTES,
    JOB_SLICE_SECONDS,
    PROCESS_IDENTITY_KEY,
)
from .wac_webhook_units import RETRY, classify, describe

_logger = logging.getLogger(__name__)

#: Key of the delivery's history reader in the transaction's cache (``cr.cache``).
_BODY_HISTORY = "wac_body_history"


class WacWebhookDelivery(models.Model):
    """How a delivery's jobs process its changes."""

    _inherit = "wac.webhook.delivery"  # pylint: disable=consider-merging-classes-inherited

    def _wac_process(self, continued=False):
        """Split the delivery into one event per change, route and process each of them.

        Small changes are processed here, in order; history chunks and large changes get jobs
        of their own. Idempotent: events are only created once per delivery, and processing
        an event twice changes nothing (every object has its own key). The job always ends
        with the delivery in a recorded state: a body that cannot be split is *failed* with
        the reason.

        :param continued: a later run for the changes that met another job's work (see
            :meth:`_wac_process_inline`); the first run enqueued the jobs of the others
        """
        self.ensure_one()
        if not self.event_ids and not self._wac_split():
            return self.state
        pending = self.event_ids.filtered(lambda e: e.state == "pending").sorted("change_index")
        history = pending.filtered(lambda e: e.field == "history")
        large = (pending - history).filtered(
            lambda e: len(e.payload or "") > INLINE_CHANGE_MAX_BYTES)
        if not continued:
            large._wac_enqueue()
            if history:
                self._wac_enqueue_history()
        self._wac_process_inline(pending - history - large)
        self._wac_settle()
        return self.state

    def _wac_enqueue_history(self, eta=None):
        """One job imports the delivery's history chunks, in the history channel.

        One job for all of them, not one each: a fuzzed delivery of 2,500 small chunks spent
        69 of its 81 seconds enqueuing their jobs (queue_job's identity key search and
        ``create`` per job), and the chunks of one delivery are imported one after the other
        anyway (the channel's capacity is 1).
        """
        self.ensure_one()
        self.with_delay(
            channel=CHANNEL_HISTORY, priority=PRIORITY_WEBHOOK, eta=eta,
            identity_key=HISTORY_IDENTITY_KEY % self.id,
            description="WhatsApp history of webhook delivery %d" % self.id,
        )._wac_job_history()

    def _wac_job_history(self):
        """queue_job entry point: import the delivery's pending history chunks, in order.

        The delivery's state is left to the minute cron: its row is written by its own job.
        """
        self.ensure_one()
        events = self.event_ids.filtered(
            lambda e: e.field == "history" and e.state == "pending").sorted("change_index")
        self._wac_process_inline(events, history=True)
        return "%d history chunk(s)" % len(events)

    def _wac_process_inline(self, events, history=False, slice_seconds=JOB_SLICE_SECONDS):
        """Process ``events`` in this job, in batches (one savepoint each, see
        ``wac.webhook.event._wac_process_batch``); an event that fails its batch is processed
        again alone, in a savepoint of its own: a bad one is recorded on itself, and its
        neighbours are processed.

        An event that meets another job's work (classified *retry*) is left for later, with
        the others that do: this transaction's snapshot is older than that work, so they
        cannot succeed in it. They are left to one later run of this job
        (:meth:`_wac_continue_later`), not to a job each: jobs of the same rows (500 changes
        on one template) would conflict with each other, again and again. So are the events
        left when ``slice_seconds`` have passed (at least one event is processed per run).
        """
        later, error = self.env["wac.webhook.event"], None
        deadline = time.monotonic() + slice_seconds
        index = 0
        while index < len(events):
            if index and time.monotonic() > deadline:
                self._wac_continue_later(later | events[index:], None, progressed=True,
                                         history=history)
                return
            processed = events[index:]._wac_process_batch(deadline)
            if not processed:
                event, processed = events[index], 1
                caught = event._wac_try_process()
                if caught is not None:
                    later, error = later | event, caught
            index += processed
        if later:
            self._wac_continue_later(later, error, progressed=len(later) < len(events),
                                     history=history)

    def _wac_continue_later(self, events, error, progressed, history=False):
        """Leave ``events`` to a later run of the delivery's job, after a conflict.

        When this run processed other events, it commits them and enqueues the next run.
        When it processed none, queue_job retries it and counts its tries; at the last one,
        each event gets a job of its own, with tries of its own, that ends in a recorded state.
        """
        Event = self.env["wac.webhook.event"]
        tries, max_tries = Event._wac_job_tries()
        delay = Event._wac_retry_delay(tries)
        _logger.debug("WhatsApp webhook delivery %d: %d change(s) continued in %d s (%s).",
                      self.id, len(events), delay,
                      describe(error) if error else "time slice used")
        if (progressed or not max_tries) and history:
            self._wac_enqueue_history(eta=delay)
        elif progressed or not max_tries:
            self.with_delay(
                channel=CHANNEL_WEBHOOK, priority=PRIORITY_WEBHOOK, eta=delay,
                identity_key=PROCESS_IDENTITY_KEY % self.id,
                description="WhatsApp webhook delivery %d (continued)" % self.id,
            )._wac_process(continued=True)
        elif tries + 1 < max_tries:
            raise RetryableJobError(describe(error), seconds=delay) from error
        else:
            events._wac_enqueue(eta=delay)

    def _wac_split(self):
        """Create the delivery's events; on failure record why and return ``False``."""
        try:
            with self.env.cr.savepoint():
                # Streamed: a history change's messages stay in the body (its history job
                # reads them from there), everything else is decoded as usual.
                changes = webhook_stream.parse_body(self._wac_open_body)
                self.env["wac.webhook.event"]._wac_create_from_changes(self, changes)
            return True
        except webhook.PayloadError as error:
            # Signed by Meta but not a WhatsApp payload: kept, visible, never an error.
            self.write({"state": "ignored", "error": sanitize(str(error))})
        except Exception as error:  # job boundary: always end in a recorded state
            if classify(error) == RETRY:
                raise  # queue_job postpones the job with a debug line: the next try sees more
            _logger.warning("WhatsApp webhook delivery %d cannot be split: %s", self.id,
                            describe(error))
            self.write({"state": "failed", "error": self.env._(
                "Its changes could not be read: %(reason)s", reason=describe(error))})
        return False

    def _wac_body_history(self):
        """The reader of this delivery's history chunks, kept for the transaction: its history
        job asks for chunk after chunk, and the reader goes on where it stopped instead of
        reading the body from its start for each (``webhook_stream.BodyHistory``).

        It reads the body from memory (at most Meta's 3 MB): a server-side cursor
        (:meth:`_wac_open_body`) is closed when a batch's savepoint is rolled back. One
        delivery's reader is kept at a time.
        """
        self.ensure_one()
        held = self.env.cr.cache.get(_BODY_HISTORY)
        if held is None or held[0] != self.id:
            self.env.cr.execute(
                "SELECT convert_to(body, 'UTF8') FROM wac_webhook_delivery WHERE id = %s",
                [self.id])
            data = bytes(self.env.cr.fetchone()[0])
            held = (self.id, webhook_stream.BodyHistory(lambda: io.BytesIO(data)))
            self.env.cr.cache[_BODY_HISTORY] = held
        return held[1]

    def _wac_open_body(self):
        """The body as a new binary stream, read from the database one slice at a time."""
        self.ensure_one()
        return _BodyReader(self.env.cr, self.id)

    def _wac_settle(self):
        """Set each delivery's state from its events' (its own job, then the minute cron:
        event jobs never write the delivery, whose row would then be hot)."""
        for delivery in self:
            states = set(delivery.event_ids.mapped("state"))
            if "pending" in states:
                state = "processing"
            elif states & {"failed", "partial"}:
                state = "failed" if states == {"failed"} else "partial"
            else:
                state = "done"
            if delivery.state != state:
                delivery.state = state

    def action_reprocess(self):
        """Process again the failed, partly failed and pending events of these deliveries, and
        the deliveries that could not be split."""
        self.event_ids.action_reprocess()
        unsplit = self.filtered(lambda d: not d.event_ids and d.state in ("failed", "received"))
        unsplit.write({"state": "received", "error": False,
                       "dispatched_at": fields.Datetime.now()})
        unsplit._wac_enqueue()
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
