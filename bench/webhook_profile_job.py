"""Run inside ``odoo shell`` (stdin): profile the delivery jobs of some fuzz deliveries (issue 9).

Input (environment): ``WAC_FUZZ_SEED`` and ``WAC_FUZZ_INDEXES`` (comma-separated indexes of
``bench/fuzz_webhook.py``'s deliveries, e.g. the heaviest of ``bench/fuzz_census.py``),
``WAC_PROFILE_OUT`` (optional: where to dump the cProfile stats), ``WAC_APP_SECRET``,
``WAC_HISTORY_RUNS`` (most runs of the history job, one 20 s slice each; 50).

Each delivery is stored through the controller's entry point (``_wac_ingest``, as the public
user), committed, then its jobs run here, one after the other, as the runner would run them:
the delivery's job (``_wac_process``, repeated while it enqueued a continuation) and its
history job (``_wac_job_history``, run again while chunks are left). Every event's processing
(``wac.webhook.event._wac_process``: its handler and writes, without the savepoint and flush
around it, which batches share) is timed and its SQL queries counted, by field; the jobs'
totals include everything.

Prints ``BENCH_JSON {...}``: per field, events, ms per event, queries per event; the whole
jobs' seconds and queries.
"""

import collections
import cProfile
import hashlib
import hmac
import json
import os
import sys
import time

env = globals()["env"]  # odoo shell runs this file with env in its namespace

from odoo import api  # noqa: E402

sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
import fuzz_webhook  # noqa: E402

Event = type(env["wac.webhook.event"])
original_process = Event._wac_process
per_field = collections.defaultdict(lambda: [0, 0.0, 0])  # events, seconds, queries


def timed_process(self, *args, **kwargs):
    cr = self.env.cr
    before, started = cr.sql_log_count, time.perf_counter()
    try:
        return original_process(self, *args, **kwargs)
    finally:
        stats = per_field[self.field]
        stats[0] += 1
        stats[1] += time.perf_counter() - started
        stats[2] += cr.sql_log_count - before


def run_jobs(delivery):
    """The delivery's job until it leaves nothing pending, then its history job (one 20 s
    slice per run) until it leaves nothing pending or ``WAC_HISTORY_RUNS`` runs (50)."""
    for _run in range(50):
        env.invalidate_all()
        delivery._wac_process(continued=_run > 0)
        env.cr.commit()
        if not delivery.event_ids.filtered(
                lambda e: e.state == "pending" and e.field != "history"):
            break
    history = {"runs": 0, "seconds": 0.0}
    for _run in range(int(os.environ.get("WAC_HISTORY_RUNS", "50"))):
        env.invalidate_all()
        if not delivery.event_ids.filtered(
                lambda e: e.state == "pending" and e.field == "history"):
            break
        started = time.perf_counter()
        delivery._wac_job_history()
        env.cr.commit()
        history["runs"] += 1
        history["seconds"] += time.perf_counter() - started
    env.invalidate_all()
    chunks = delivery.event_ids.filtered(lambda e: e.field == "history")
    history["chunks"] = len(chunks)
    history["chunks_done"] = len(chunks.filtered(lambda e: e.state != "pending"))
    history["chunks_per_s"] = round(history["chunks_done"] / max(history["seconds"], 1e-9), 1)
    history["seconds"] = round(history["seconds"], 2)
    return history


Cursor = type(env.cr._obj)
sql_time = collections.defaultdict(lambda: [0, 0.0])  # statement head: count, seconds


class TimedCursor:
    """``env.cr._obj`` with each statement timed by its first words (what a profile of
    psycopg2's ``execute`` alone cannot tell apart)."""

    def __init__(self, obj):
        self._obj = obj

    def __getattr__(self, name):
        return getattr(self._obj, name)

    def execute(self, query, params=None):
        started = time.perf_counter()
        try:
            return self._obj.execute(query, params)
        finally:
            text = query.decode() if isinstance(query, bytes) else str(query)
            head = " ".join(text.split()[:4])[:60]
            stats = sql_time[head]
            stats[0] += 1
            stats[1] += time.perf_counter() - started


env.cr._obj = TimedCursor(env.cr._obj)
seed = os.environ.get("WAC_FUZZ_SEED", "9")
indexes = [int(i) for i in os.environ["WAC_FUZZ_INDEXES"].split(",")]
secret = os.environ.get("WAC_APP_SECRET", "wac-bench-app-secret").encode()
public_env = api.Environment(env.cr, env.ref("base.public_user").id, {})
Delivery = env["wac.webhook.delivery"].sudo()
result = {"deliveries": []}
Event._wac_process = timed_process
profiler = cProfile.Profile()
total_s, total_queries, seen = 0.0, 0, set()
try:
    for index in indexes:
        _kind, body, _wamid, what = fuzz_webhook.delivery(seed, index)
        signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        status, _reason = public_env["wac.webhook.delivery"].sudo()._wac_ingest(
            body, signature, "127.0.0.1")
        env.cr.commit()
        delivery = Delivery.search([], limit=1, order="id desc")
        if status != 200 or delivery.id in seen:  # refused at the door, or a redelivery
            result["deliveries"].append({"index": index, "status": status, "what": what})
            continue
        seen.add(delivery.id)
        before, started = env.cr.sql_log_count, time.perf_counter()
        profiler.enable()
        history = run_jobs(delivery)
        profiler.disable()
        seconds, queries = time.perf_counter() - started, env.cr.sql_log_count - before
        total_s, total_queries = total_s + seconds, total_queries + queries
        result["deliveries"].append({
            "index": index, "status": status, "bytes": len(body), "what": what,
            "events": len(delivery.event_ids), "state": delivery.state,
            "event_states": dict(collections.Counter(delivery.event_ids.mapped("state"))),
            "seconds": round(seconds, 3), "queries": queries, "history": history})
finally:
    Event._wac_process = original_process
if os.environ.get("WAC_PROFILE_OUT"):
    profiler.dump_stats(os.environ["WAC_PROFILE_OUT"])
events = sum(d.get("events", 0) for d in result["deliveries"])
result["total"] = {"seconds": round(total_s, 3), "queries": total_queries, "events": events,
                   "ms_per_event": round(1000 * total_s / max(events, 1), 2),
                   "queries_per_event": round(total_queries / max(events, 1), 1)}
result["per_field"] = {
    field: {"events": n, "ms_per_event": round(1000 * s / n, 2),
            "queries_per_event": round(q / n, 1)}
    for field, (n, s, q) in per_field.items()}
result["sql"] = sorted(([head, n, round(1000 * s, 1)] for head, (n, s) in sql_time.items()),
                       key=lambda row: -row[2])[:25]
print("BENCH_JSON " + json.dumps(result))
