"""Processing a delivery's events in batches: one savepoint for many events, and one alone
only where the batch fails.

A savepoint per event and per unit made most of a small event's cost: each one flushes the
ORM on entry and on release, so every event's own ``UPDATE`` went to PostgreSQL alone
(``bench/webhook_profile_job.py`` measures it; the figures are in the README). A batch flushes
once, and the ORM writes its events' rows in one ``UPDATE``.
"""

import time

from odoo import models

#: Events processed at most in one savepoint: a failure replays the ones before it.
BATCH_EVENTS = 50
#: Seconds a batch runs at most (the same bound: the work a failure can make redo).
BATCH_SECONDS = 2.0


class WacWebhookEvent(models.Model):
    """Batches of events."""

    _inherit = "wac.webhook.event"  # pylint: disable=consider-merging-classes-inherited

    def _wac_process_batch(self, deadline=None):
        """Process the first events of ``self``, in order, in one savepoint, and return how
        many were processed and kept (0 when the first one fails).

        Inside the batch, an event's units are not isolated (no savepoint each): any error
        rolls the batch back, and the events before the failed one are processed again, in one
        savepoint, without it. A failure at the end (the flush of the batch's writes) names no
        event: the first half is tried instead. The caller processes the event that failed
        alone (:meth:`_wac_try_process`), where a bad unit is recorded with its reason and its
        neighbours are kept, exactly as without batches.

        :param float deadline: ``time.monotonic()`` after which no further event is started
            (at least one is)
        """
        stop = min(deadline or float("inf"), time.monotonic() + BATCH_SECONDS)
        count = min(len(self), BATCH_EVENTS)
        while count:
            processed = 0
            try:
                with self.env.cr.savepoint():
                    for event in self[:count]:
                        if processed and time.monotonic() > stop:
                            break
                        event._wac_process(isolate_units=False)
                        processed += 1
                return processed
            except Exception:  # unit boundary: the failed event is processed alone, recorded
                count = processed if processed < count else count // 2
        return 0
