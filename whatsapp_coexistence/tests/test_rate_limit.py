"""The shared rate limiter under real concurrency: two workers, two PostgreSQL connections."""

import itertools
import threading
import time
import uuid

from odoo.sql_db import db_connect
from odoo.tests import BaseCase, tagged
from odoo.tests.common import get_db_name

from ..models.wac_rate_limit import RATE_SAFETY, LimitSpec, reserve_slot, restamp_slot
from ..tools.wa_cloud.ratelimit import max_in_window


@tagged("post_install", "-at_install")
class TestRateLimitRace(BaseCase):
    """Not a TransactionCase: the limiter commits, so the workers here use connections of
    their own, like two Odoo workers would; the test removes its rows at the end."""

    CAP = 20.0
    RATE = CAP * RATE_SAFETY  # what a send job asks of the limiter for a 20/s cap

    def setUp(self):
        super().setUp()
        self.dbname = get_db_name()
        self.key = "test:%s" % uuid.uuid4().hex
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        with db_connect(self.dbname).cursor() as cr:
            cr.execute("DELETE FROM wac_rate_bucket WHERE key LIKE %s", (self.key + "%",))
            cr.commit()  # pylint: disable=invalid-commit

    def race(self, workers, per_worker, limits, max_wait, sleep):
        """Each worker reserves ``per_worker`` slots on its own connection."""
        results = [[] for _ in range(workers)]
        errors = []
        barrier = threading.Barrier(workers)

        def work(index):
            try:
                with db_connect(self.dbname).cursor() as cr:
                    barrier.wait()
                    for _ in range(per_worker):
                        allowed, wait, slot = reserve_slot(cr, limits, max_wait)
                        if allowed and sleep:
                            time.sleep(wait)
                        results[index].append((allowed, wait, slot, time.time()))
            except Exception as error:  # reported by the test
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertFalse(errors, errors)
        return results

    def test_two_workers_never_exceed_the_rate(self):
        results = self.race(2, 40, [(self.key, self.RATE, 1, None)], max_wait=10, sleep=True)
        slots = [slot for worker in results for allowed, _w, slot, _t in worker if allowed]
        self.assertEqual(len(slots), 80, "every reservation within max_wait succeeds")
        self.assertEqual(len(set(slots)), 80, "no two workers got the same slot")
        gaps = [b - a for a, b in zip(sorted(slots), sorted(slots)[1:])]
        self.assertGreaterEqual(min(gaps), 1 / self.RATE - 1e-5)
        self.assertLessEqual(max_in_window(slots), self.CAP)
        # Both workers really raced (their slots interleave), and the pace is the rate.
        first = {round(s, 6) for _a, _w, s, _t in results[0]}
        owners = [0 if round(s, 6) in first else 1 for s in sorted(slots)]
        self.assertGreater(sum(a != b for a, b in itertools.pairwise(owners)), 10)
        span = max(slots) - min(slots)
        self.assertAlmostEqual(79 / span, self.RATE, delta=self.RATE * 0.05)
        # When the workers really sent after sleeping to their slots is the scheduler's
        # business, not the limiter's: on a loaded machine a late wake-up bunches two sends.
        # The wall-clock cap is measured where it belongs, in bench/chaos_send.py --two-servers.

    def test_two_workers_never_exceed_the_cap_in_any_second(self):
        """The company's cap as send jobs use it: a window of 1 / RATE_SAFETY s. One worker
        stalls half-way; the other catches up the missed slots without exceeding the cap."""
        limits = [LimitSpec(self.key, self.CAP, company_id=None, window=1 / RATE_SAFETY)]
        slots, errors = [[], []], []
        barrier = threading.Barrier(2)

        def work(index):
            try:
                with db_connect(self.dbname).cursor() as cr:
                    barrier.wait()
                    for n in range(40):
                        if index == 1 and n == 10:
                            time.sleep(0.6)  # a busy worker
                        allowed, wait, slot = reserve_slot(cr, limits, max_wait=10)
                        self.assertTrue(allowed)
                        time.sleep(wait)
                        slots[index].append(slot)
            except Exception as error:  # reported by the test
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertFalse(errors, errors)
        every = sorted(slots[0] + slots[1])
        self.assertEqual(len(set(every)), 80)
        self.assertLessEqual(max_in_window(every, window=1 / RATE_SAFETY), self.CAP)
        self.assertLessEqual(max_in_window(every), self.CAP)
        # 80 messages at 20 per 1.03 s: four windows, the stall made up for.
        self.assertLess(every[-1] - every[0], 4 / RATE_SAFETY + 0.2)

    def test_a_late_send_keeps_a_whole_window_before_its_twentieth_successor(self):
        """A message that left 45 ms after its slot moves its slot in the window: the slot 20
        places later is then a whole window after the moment it really left."""
        limits = [LimitSpec(self.key, self.CAP, window=1 / RATE_SAFETY)]
        with db_connect(self.dbname).cursor() as cr:
            first = [reserve_slot(cr, limits, max_wait=10).slot for _ in range(20)]
            late = first[-1] + 0.045
            restamp_slot(cr, self.key, first[-1], late)
            second = [reserve_slot(cr, limits, max_wait=10).slot for _ in range(20)]
        self.assertGreaterEqual(second[-1], late + 1 / RATE_SAFETY - 1e-6)
        self.assertLessEqual(max_in_window([*first[:-1], late, *second],
                                           window=1 / RATE_SAFETY), self.CAP)
        self.assertLess(second[-1], first[-1] + 1 / RATE_SAFETY + 0.045 + 0.01,
                        "only the late slot moved")

    def test_far_slots_are_refused_not_reserved(self):
        """A worker told to wait longer than it may reserves nothing (its job is postponed),
        so the other workers' slots are not pushed back by it."""
        limits = [(self.key, 1.0, 1, None)]
        results = self.race(2, 10, limits, max_wait=0.5, sleep=False)
        outcomes = [allowed for worker in results for allowed, *_r in worker]
        self.assertEqual(sum(outcomes), 1, "one slot now; the next is a second away")
        refused = [w for worker in results for allowed, w, *_r in worker if not allowed]
        self.assertEqual(len(refused), 19)
        self.assertTrue(all(0.5 < w <= 1.0 for w in refused), refused)

    def test_pair_spacing_and_company_rate_together(self):
        company, pair = self.key + ":company", self.key + ":pair"
        limits = [(company, 20.0, 1, None), (pair, 1 / 6, 1, None)]
        results = self.race(2, 2, limits, max_wait=1.0, sleep=False)
        outcomes = sorted(allowed for worker in results for allowed, *_r in worker)
        self.assertEqual(outcomes, [False, False, False, True],
                         "one message to this person, the others must wait 6 s")
