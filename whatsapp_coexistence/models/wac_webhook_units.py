"""The units of a webhook event: each message, status or contact of a change on its own.

A change carries several objects (a status for each of several messages, the messages of a
history chunk). One bad object must not lose its neighbours, so a handler applies them
through :class:`Units`: all at once first (one savepoint, the usual case), then, if that
fails, one at a time, each in its own savepoint. A bad one is recorded with its reason and its
fragment as received; the event then ends *partly failed* and shows them.

Errors are classified here (:func:`classify`), once for the whole webhook side:

* ``retry``: a concurrent transaction got there first (serialization failure, deadlock, lock
  timeout, or another job creating the same contact). The whole event is retried later, when
  its snapshot sees the other transaction's work.
* ``already_there``: the unique key says the object is stored (a message another job stored):
  the unit is done.
* ``permanent``: anything else. Retrying cannot help: the unit fails, with its reason.
"""

import json
from contextlib import suppress
from dataclasses import dataclass

import psycopg2

from odoo.tools import SQL

from ..tools.wa_cloud.errors import sanitize

RETRY = "retry"
ALREADY_THERE = "already_there"
PERMANENT = "permanent"

CONCURRENCY_ERRORS = (
    psycopg2.errors.SerializationFailure,
    psycopg2.errors.DeadlockDetected,
    psycopg2.errors.LockNotAvailable,
)
# Unique keys whose violation means "stored by another job meanwhile".
_ALREADY_THERE_KEYS = frozenset({"wac_message_wamid_uniq"})
# Unique keys whose violation means "another job is creating it": its row shows up once that
# job commits, so the event is retried (a contact of a new customer who wrote twice at once).
_CREATED_MEANWHILE_KEYS = frozenset({"wac_contact_phone_key_uniq"})

#: Characters of a unit's fragment kept in the event's error (the payload has it whole).
FRAGMENT_MAX_CHARS = 2000


def classify(error):
    """Tell what to do about ``error``: :data:`RETRY`, :data:`ALREADY_THERE` or
    :data:`PERMANENT`."""
    if isinstance(error, CONCURRENCY_ERRORS):
        return RETRY
    if isinstance(error, psycopg2.errors.UniqueViolation):
        constraint = getattr(error.diag, "constraint_name", None)
        if constraint in _ALREADY_THERE_KEYS:
            return ALREADY_THERE
        if constraint in _CREATED_MEANWHILE_KEYS:
            return RETRY
    return PERMANENT


def lock_rows(cr, table, ids):
    """Lock the rows ``ids`` of ``table`` for an update, in id order.

    A row that another transaction changed after this one's snapshot raises a serialization
    failure here, without the ERROR line that the ORM's logged update query would write: the
    caller's event is then retried quietly (:data:`RETRY`). A row being changed waits for the
    other transaction first.
    """
    if ids:
        cr.execute(SQL("SELECT id FROM %s WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
                       SQL.identifier(table), list(ids)), log_exceptions=False)


def claim(cr, lock_class, lock_keys, probe):
    """Be the only transaction creating the rows of ``lock_keys`` until this one ends; raise a
    serialization failure, quietly, when another transaction created one of them after this
    one's snapshot.

    An advisory lock per key (in the order given) makes a second creator wait for the first
    one's transaction; then ``probe``, the ``INSERT ... ON CONFLICT DO NOTHING`` of those
    rows, always rolled back, meets a row committed meanwhile, which PostgreSQL reports under
    REPEATABLE READ as a serialization failure (:data:`RETRY`). Without it the ORM's insert
    meets that row at the unique key, with an ERROR line per try. One round trip for the
    locks, the probe and its rollback: the probe's savepoint is taken after the locks, which
    a rollback to it would release.

    :param lock_keys: strings, each locked as ``hashtext(key)`` in ``lock_class``
    :param SQL probe: the insert
    """
    try:
        cr.execute(SQL("""
            SELECT pg_advisory_xact_lock(%s, hashtext(k))
              FROM unnest(%s::varchar[]) WITH ORDINALITY AS t(k, n) ORDER BY n;
            SAVEPOINT wac_claim;
            %s;
            ROLLBACK TO SAVEPOINT wac_claim;
            RELEASE SAVEPOINT wac_claim
        """, lock_class, list(lock_keys), probe), log_exceptions=False)
    except psycopg2.Error:
        # The probe failed: leave the transaction as usable as a savepoint block would (when
        # the lock itself failed there is no savepoint, and this fails too).
        with suppress(psycopg2.Error):
            cr.execute("ROLLBACK TO SAVEPOINT wac_claim; RELEASE SAVEPOINT wac_claim",
                       log_exceptions=False)
        raise


def describe(error):
    """``Type: message`` of ``error``, first line only, without secrets."""
    text = str(error).strip().splitlines()
    return sanitize("%s: %s" % (type(error).__name__, text[0] if text else ""))


@dataclass(frozen=True)
class UnitFailure:
    """One object of a change that could not be applied.

    :ivar kind: what it is (``message``, ``status``, ``contact``...)
    :ivar position: its index among the objects of its kind in the change
    :ivar reason: :func:`describe` of the error
    :ivar fragment: the object as received, as JSON, cut at :data:`FRAGMENT_MAX_CHARS`
    """

    kind: str
    position: int
    reason: str
    fragment: str


def fragment_of(item):
    """The object as Meta sent it (``raw`` of a parsed event), as JSON text for a person."""
    raw = getattr(item, "raw", item)
    try:
        text = json.dumps(raw, ensure_ascii=False, default=repr)
    except ValueError:  # a circular structure: never from JSON, but never an error here
        text = repr(raw)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > FRAGMENT_MAX_CHARS:
        text = text[:FRAGMENT_MAX_CHARS] + "…"
    return text


class Units:
    """Apply the objects of one event's change, isolating the bad ones.

    :param cr: the job's cursor (savepoints)
    :param bool isolate: ``False`` when the caller isolates the whole event instead (a batch
        of events in one savepoint, see ``wac.webhook.event._wac_process_batch``): the objects
        are applied all at once with no savepoint of their own, and an error propagates. The
        caller then processes the event again, alone, with ``isolate=True``.
    """

    def __init__(self, cr, isolate=True):
        self._cr = cr
        self._isolate = isolate
        self.failures = []

    def run(self, kind, items, apply):
        """Call ``apply(batch)`` with all ``items``, or with each one alone if that fails.

        :param str kind: what the items are, for the record of a failure
        :param apply: callable taking a list of items; it may be called several times, so it
            must be idempotent (every handler deduplicates by Meta's ids)
        :return: what each call of ``apply`` that was kept returned (a call whose savepoint
            was rolled back returns nothing: its ids no longer exist)
        :rtype: list
        :raises: the error of a unit classified :data:`RETRY` (the event is retried); without
            ``isolate``, any error
        """
        items = list(items)
        if not items:
            return []
        if not self._isolate:
            return [apply(items)]
        try:
            with self._cr.savepoint():
                result = apply(items)
            return [result]
        except Exception as error:  # unit boundary: classified, a failure is recorded
            if classify(error) == RETRY:
                raise
            if len(items) == 1:
                self.settle(kind, 0, items[0], error)
                return []
        results = []
        for position, item in enumerate(items):
            try:
                with self._cr.savepoint():
                    result = apply([item])
            except Exception as error:  # unit boundary: classified, a failure is recorded
                if classify(error) == RETRY:
                    raise
                self.settle(kind, position, item, error)
            else:
                results.append(result)
        return results

    def settle(self, kind, position, item, error):
        """Record that ``item`` failed with ``error``, unless the error means it is stored."""
        if classify(error) == ALREADY_THERE:
            return
        self.failures.append(UnitFailure(kind, position, describe(error), fragment_of(item)))
