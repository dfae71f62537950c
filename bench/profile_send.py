"""Profile the send job in one process: SQL queries and CPU per send, and where they go.

The send bench (``bench_automation.py --only send``) gives a rate through the real job
runner, which mixes the send job with the runner, the HTTP workers and the machine's load.
This script runs the same send jobs (confirmations of new appointments, to the zero-latency
fake Graph server in a process of its own) one after the other in this process, each in a
transaction of its own as the runner does, and reports:

- the SQL queries per send (Odoo's own counter, side cursors included);
- the process CPU time per send (``time.process_time``: this process only, so the other
  engineers' load on the machine moves it far less than a wall-clock rate);
- with ``--queries FILE``, the SQL of one more send, the last one;
- with ``--profile FILE``, a cProfile of as many sends again (``python3 -m pstats FILE``), and the
  addon's functions with the most cumulative time.

The warm-up sends (``--warmup``) fill Odoo's caches and are not counted.

Run: ``WAC_RUN_DIR=.run/profile python3 bench/profile_send.py --sends 200 --profile out.prof``.
"""

import argparse
import cProfile
import json
import logging
import pstats
import sys
import time

from automation_harness import drop_database, fresh_database, log, odoo_registry, pg
from bench_automation import FakeGraphProcess, book_appointments, setup_tenant


def enqueue_sends(registry, ids, count):
    """Create ``count`` appointments with one customer each: one confirmation job each (a
    batch of 50 or more is planned by a job, run here first).

    :returns: the uuids of the send jobs, oldest first
    """
    since = book_appointments(registry, ids, count, 10)
    with registry.cursor() as cr:
        cr.execute("SELECT uuid FROM queue_job WHERE id > %s AND method_name != '_wac_job_send' "
                   "ORDER BY id", (since,))
        planning = [row[0] for row in cr.fetchall()]
    for uuid in planning:
        run_job(registry, uuid)
    with registry.cursor() as cr:
        cr.execute("SELECT uuid FROM queue_job WHERE id > %s AND method_name = '_wac_job_send' "
                   "ORDER BY id", (since,))
        return [row[0] for row in cr.fetchall()]


def run_job(registry, uuid):
    """Run one queued job as the runner would, in a transaction of its own.

    :returns: the job's result
    """
    import odoo

    from odoo.addons.queue_job.job import Job

    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        job = Job.load(env, uuid)
        job.set_started()
        job.store()
        cr.commit()
        result = job.perform()
        job.set_done(result=result)
        job.store()
    return result


def measure(registry, uuids, profiler=None):
    """Run the jobs, counting queries and CPU time; the profiler (if any) sees the sends."""
    from odoo import sql_db

    results = {}
    queries = sql_db.sql_counter
    cpu = time.process_time()
    wall = time.perf_counter()
    for uuid in uuids:
        if profiler:
            profiler.enable()
        result = run_job(registry, uuid)
        if profiler:
            profiler.disable()
        verdict = str(result).split(" ", 1)[0]
        results[verdict] = results.get(verdict, 0) + 1
    count = len(uuids)
    return {"sends": count, "results": results,
            "queries_per_send": (sql_db.sql_counter - queries) / count,
            "cpu_ms_per_send": (time.process_time() - cpu) * 1000 / count,
            "wall_ms_per_send": (time.perf_counter() - wall) * 1000 / count}


def log_queries(registry, uuid, path):
    """Run one more send with Odoo's query log on, and write its queries to ``path``."""
    logger = logging.getLogger("odoo.sql_db")
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        return run_job(registry, uuid)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()


def top_functions(path, limit):
    """The addon's functions with the most cumulative time in a profile."""
    stats = pstats.Stats(path)
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():
        if "whatsapp_coexistence" in filename:
            short = filename.split("whatsapp_coexistence/", 1)[-1]
            rows.append((cumtime, tottime, calls, "%s:%d %s" % (short, line, name)))
    rows.sort(reverse=True)
    return ["%8.3f s cum %8.3f s own %6d calls  %s" % row for row in rows[:limit]]


def new_database(name, base=None):
    """A database with the addon installed: a copy of ``base`` when given (installed first
    if missing: a change of Python code only needs no new install), else a fresh install."""
    if not base:
        fresh_database(name)
        return
    if pg("psql", "-d", base, "-c", "SELECT 1").returncode:
        fresh_database(base)
    drop_database(name)
    done = pg("createdb", "-T", base, name)
    if done.returncode:
        raise RuntimeError(done.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--profile", help="write a cProfile of the measured sends here")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--queries", help="write the SQL of one more send here")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--base", help="copy this database (installed once) instead of "
                        "installing the addon again")
    args = parser.parse_args()
    db = "wac_profile_send"
    new_database(db, args.base)
    odoo, registry = odoo_registry(db)
    fake = FakeGraphProcess()
    try:
        with registry.cursor() as cr:
            env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
            company, account, organizer, partners = setup_tenant(env, fake.url)
            account.rate_limit_mps = 10000  # the cap raised, as in the send bench
            ids = company.id, account.id, organizer.id, partners.ids
        profiled = args.sends if args.profile else 0
        logged = 1 if args.queries else 0
        uuids = enqueue_sends(registry, ids, args.warmup + args.sends + profiled + logged)
        last = uuids.pop() if logged else None
        log("%d send jobs queued" % len(uuids))
        report = {"warmup": measure(registry, uuids[:args.warmup]),
                  "measured": measure(registry, uuids[args.warmup:args.warmup + args.sends])}
        if profiled:  # apart: the profiler's own cost would swell the CPU time measured
            profiler = cProfile.Profile()
            report["profiled"] = measure(registry, uuids[-profiled:], profiler)
            profiler.dump_stats(args.profile)
        if last:
            log_queries(registry, last, args.queries)
        report["fake_graph_messages"] = len(fake.messages())
    finally:
        fake.stop()
        if not args.keep:
            drop_database(db)
    print(json.dumps(report, indent=2))
    if args.profile:
        print("\n".join(top_functions(args.profile, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
