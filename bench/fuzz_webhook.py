"""Hostile-but-signed webhook deliveries against a real Odoo (issue 9): nothing lost, nothing
refused by mistake.

    python3 bench/fuzz_webhook.py [--n 10000 | --quick] [--seed 9] [--port 8283]
                                  [--only fuzz|identical] [--two-servers]

1. **Fuzz.** ``--n`` deliveries (10,000; ``--quick``: 500), each built from ``--seed`` and its
   index only (any one can be rebuilt alone), POSTed with a valid signature on 4 connections
   to an Odoo with 2 workers and queue_job's runner:

   * most are *poisoned*: one of Meta's shapes with 1-3 mutations of
     ``tests/webhook_mutations.py`` (dropped keys, wrong types, strings up to 1 MB, nesting up
     to 3,000 levels, extreme numbers, NUL and lone surrogates, 500 entries or changes,
     duplicate keys, unknown fields, broken ``field`` / ``phone_number_id``), carrying one
     valid inbound message with a wamid of its own in its first entry (its own entry, the
     first change, or the first message of the first change);
   * a tenth are no JSON object at all (truncated, ``NaN``, invalid UTF-8, ...).

   Bodies stay under Meta's 3 MB. When the queue has drained (or ``--drain-timeout``), it
   runs the minute cron's pass until it settles nothing more (the servers run no cron; it
   settles the deliveries whose events all ended), then reports HTTP statuses, delivery,
   event and job states, ERROR records in the server log (and how many are serialization
   failures or deadlocks), and how many of the valid messages beside a poisoned delivery
   answered 200 were stored.

2. **Identical-status load.** The same signed status webhook again and again (Meta
   redelivering one) on 8 connections, in rounds alternating with ``GET /web/health``, on 2
   workers with the runner: non-200 answers, and the p99 ratio to ``/web/health``.

``--two-servers`` runs the fuzz against two Odoo servers on one database (the second without
queue_job's runner), every other delivery to each.

Exit status 1 when a target of issue 9 is missed: a 5xx, an answer other than 200/400/413, a
delivery left *received* or an event *pending* after the drain, an ERROR record of a
serialization failure, a valid neighbour not stored, a non-200 in the identical load or its
p99 at 3x that of ``/web/health`` or more. Everything listens on 127.0.0.1; the servers are
stopped on exit.
"""

import argparse
import collections
import hashlib
import hmac
import http.client
import itertools
import os
import random
import re
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import webhook_harness as harness  # noqa: E402
from bench_common import wait_queue_drained  # noqa: E402
from bench_webhook import load_phase, pooled  # noqa: E402

sys.path[:0] = [os.path.join(harness.REPO, "tests"),
                os.path.join(harness.REPO, "whatsapp_coexistence", "tests")]
import webhook_mutations as mutations  # noqa: E402  (pure: stdlib and payloads)

WEBHOOK_PATH = "/whatsapp_coexistence/webhook"
META_MAX_BYTES = 3 * 1024 * 1024
ALLOWED_STATUSES = {200, 400, 413}
P99_TARGET_RATIO = 3.0
#: What an ERROR record of a serialization failure or a deadlock says (psycopg2, PostgreSQL).
SERIALIZATION = re.compile(r"could not serialize access|SerializationFailure|deadlock detected|"
                           r"DeadlockDetected")
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (\w+) ")


# ------------------------------------------------------------
# DELIVERIES (deterministic: seed and index)
# ------------------------------------------------------------

def delivery(seed, index):
    """The ``index``-th delivery of run ``seed``.

    :return: ``(kind, body, neighbour wamid or None, what was done)``
    """
    rng = random.Random("%s-%d" % (seed, index))
    wamid = "wamid.fuzz-%s-%06d" % (seed, index)
    wa_id = "55119%08d" % (index % 10**8)
    invalid = rng.random() < 0.1
    for _attempt in range(20):
        # Room for the neighbour and the escaping of odd text: a few draws still pass 3 MB.
        doc, names = mutations.mutate(rng, max_bytes=META_MAX_BYTES - 64 * 1024)
        doc, where = mutations.with_neighbour(rng, doc, wamid, wa_id)
        body = mutations.dumps(doc, ascii_only=rng.random() < 0.7)
        if len(body) <= META_MAX_BYTES:
            break
    else:  # 20 draws over 3 MB: the neighbour alone, still a valid delivery
        body, names, where = mutations.dumps(mutations.with_neighbour(
            rng, {}, wamid, wa_id)[0]), [], "own entry"
    if invalid:
        body, what = mutations.invalid_body(rng, body)
        return "invalid", body, None, what
    return "poisoned", body, wamid, "%s; neighbour: %s" % (", ".join(names), where)


def _post(host, port, body, signature):
    conn = http.client.HTTPConnection(host, port, timeout=120)
    try:
        conn.request("POST", WEBHOOK_PATH, body=body, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": signature,
            "User-Agent": "facebookexternalua"})
        reply = conn.getresponse()
        reply.read()
        return reply.status
    finally:
        conn.close()


def send_all(ports, n, seed, concurrency=4):
    """POST the ``n`` deliveries on ``concurrency`` connections, every other one to each port.

    :return: one ``(index, kind, status or error text, body sha256, neighbour, what)`` each
    """
    key = harness.APP_SECRET.encode()
    counter, lock, results = itertools.count(), threading.Lock(), []

    def worker():
        while (index := next(counter)) < n:
            kind, body, neighbour, what = delivery(seed, index)
            signature = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
            try:
                status = _post("127.0.0.1", ports[index % len(ports)], body, signature)
            except OSError as error:
                status = "error: %r" % error
            with lock:
                results.append((index, kind, status, hashlib.sha256(body).hexdigest(),
                                neighbour, what))
                if len(results) % 250 == 0:
                    harness.log("fuzz: %d/%d sent" % (len(results), n))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results)


# ------------------------------------------------------------
# WHAT THE SERVER DID
# ------------------------------------------------------------

def error_records(logfile):
    """The ERROR and CRITICAL records of an Odoo log, each with its traceback lines."""
    records, current = [], None
    with open(logfile, errors="replace") as handle:
        for line in handle:
            match = RECORD_START.match(line)
            if match:
                current = [line] if match.group(1) in ("ERROR", "CRITICAL") else None
                if current is not None:
                    records.append(current)
            elif current is not None:
                current.append(line)
    return ["".join(r) for r in records]


def server_state(db, sent, logfiles):
    """Delivery, event and job states, log errors and the neighbours stored."""
    states = lambda sql: dict(harness.query(db, sql))  # noqa: E731
    by_sha = dict(harness.query(db, "SELECT body_sha256, state FROM wac_webhook_delivery"))
    acked = [row for row in sent if row[1] == "poisoned" and row[2] == 200]
    wanted = [row[4] for row in acked]
    rows = harness.query(db, "SELECT wamid, count(*) FROM wac_message WHERE wamid = ANY(%s) "
                             "GROUP BY 1", (wanted,))
    stored = {w for w, _count in rows}
    errors = [record for logfile in logfiles for record in error_records(logfile)]
    return {
        "deliveries": states("SELECT state, count(*) FROM wac_webhook_delivery GROUP BY 1"),
        "deliveries_of_poisoned": dict(collections.Counter(
            by_sha.get(row[3], "not stored") for row in acked)),
        "events": states("SELECT state, count(*) FROM wac_webhook_event GROUP BY 1"),
        "jobs": states("SELECT state, count(*) FROM queue_job GROUP BY 1"),
        "failed_jobs": states("SELECT method_name || ': ' || left(coalesce(exc_message, ''), 80),"
                              " count(*) FROM queue_job WHERE state = 'failed' GROUP BY 1"),
        "error_records": len(errors),
        "serialization_error_records": sum(bool(SERIALIZATION.search(r)) for r in errors),
        "error_samples": [r.splitlines()[0][:300] for r in errors[:5]],
        "neighbours_expected": len(wanted), "neighbours_stored": len(stored),
        "neighbours_stored_twice": sum(count > 1 for _w, count in rows),
        "neighbours_lost_samples": [(row[0], row[5]) for row in acked
                                    if row[4] not in stored][:10],
    }


def statuses(sent):
    counts = collections.defaultdict(collections.Counter)
    for _index, kind, status, _sha, _neighbour, _what in sent:
        counts[kind][str(status)] += 1
    bad = [(index, kind, status, what) for index, kind, status, _s, _n, what in sent
           if status not in ALLOWED_STATUSES]
    return {kind: dict(c) for kind, c in counts.items()}, bad


# ------------------------------------------------------------
# RUNS
# ------------------------------------------------------------

SETTLE_SCRIPT = """
Delivery = env["wac.webhook.delivery"]
for _pass in range(1000):
    before = Delivery.search_count([("state", "in", ("received", "processing"))])
    Delivery._wac_cron_dispatch()
    env.cr.commit()
    if Delivery.search_count([("state", "in", ("received", "processing"))]) == before:
        break
"""


def run_fuzz(args, ports):
    db = harness.clone_db("wac_bench_fuzz")
    servers = [harness.OdooServer(db, ports[0], "fuzz", jobrunner=True, gevent_port=ports[0] + 1)]
    if args.two_servers:
        servers.append(harness.OdooServer(db, ports[1], "fuzz-second", jobrunner=False,
                                          gevent_port=ports[1] + 1))
    try:
        for server in servers:
            server.__enter__()
        harness.log("fuzz: %d deliveries, seed %s, to ports %s" % (
            args.n, args.seed, [s.port for s in servers]))
        started = time.monotonic()
        sent = send_all([s.port for s in servers], args.n, args.seed)
        sending = time.monotonic() - started
        harness.log("fuzz: sent in %.0f s; waiting for the queue to drain" % sending)
        drain, drained = wait_queue_drained(db, args.drain_timeout)
    finally:
        for server in servers:
            server.stop()
    # The bench servers run no cron: the minute cron's pass that settles the deliveries whose
    # events all ended (their history and event jobs never write the delivery) runs here.
    harness.odoo_shell(db, SETTLE_SCRIPT, "fuzz-settle")
    counts, bad = statuses(sent)
    return {"n": args.n, "seed": args.seed, "servers": len(servers), "send_s": sending,
            "drain_s": drain, "drained": drained, "statuses": counts,
            "unexpected_statuses": bad[:20], "unexpected_count": len(bad),
            **server_state(db, sent, [s.logfile for s in servers])}


def run_identical(args, port):
    db = harness.clone_db("wac_bench_identical")
    phases = {"health": [], "identical": []}
    tag = "same-%x" % int(time.time())
    with harness.OdooServer(db, port, "identical", jobrunner=True,
                            gevent_port=port + 1) as server:
        for kind in ("health", "identical"):
            load_phase(server, kind, 8, 1.0, 2000, tag)  # warm-up
        for rnd in range(args.rounds):
            order = ("health", "identical") if rnd % 2 == 0 else ("identical", "health")
            for kind in order:
                result = load_phase(server, kind, 8, args.duration, 20000, tag)
                harness.log("identical round %d %-9s %6.1f req/s p99 %6.1f ms, %d not 200" % (
                    rnd + 1, kind, result["rate"], result["p99_ms"],
                    result["requests"] - result["ok"]))
                phases[kind].append(result)
    (count,), = harness.query(db, "SELECT count(*) FROM wac_webhook_delivery")
    # Redeliveries are rows of their own (issue 9: a redelivery never updates the delivery row).
    (redeliveries,), = harness.query(db, "SELECT count(*) FROM wac_webhook_redelivery")
    (rejections,), = harness.query(db, "SELECT count(*) FROM wac_webhook_rejection")
    health, same = pooled(phases["health"]), pooled(phases["identical"])
    return {"health": health, "identical": same, "p99_ratio": same["p99_ms"] / health["p99_ms"],
            "non_200": same["failed"], "deliveries": count, "redeliveries": redeliveries,
            "rejection_rows": rejections,
            "unexpected": [u for p in phases["identical"] for u in p["unexpected"]][:5]}


def verdicts(report):
    """``(target, met)`` pairs of issue 9's Done means."""
    checks = []
    fuzz = report.get("fuzz")
    if fuzz:
        every = collections.Counter()
        for counts in fuzz["statuses"].values():
            every.update(counts)
        checks += [
            ("0 answers 5xx", not any(s.startswith("5") for s in every)),
            ("only 200 / 400 / 413", fuzz["unexpected_count"] == 0),
            ("the queue drained", fuzz["drained"]),
            ("0 deliveries received after the drain", not fuzz["deliveries"].get("received")),
            ("0 deliveries processing after the drain and the minute cron",
             not fuzz["deliveries"].get("processing")),
            ("0 events pending after the drain", not fuzz["events"].get("pending")),
            ("0 ERROR records of serialization failures",
             fuzz["serialization_error_records"] == 0),
            ("every valid neighbour stored",
             fuzz["neighbours_stored"] == fuzz["neighbours_expected"]),
            ("no message stored twice", not fuzz["neighbours_stored_twice"]),
        ]
    same = report.get("identical")
    if same:
        checks += [("identical load: 0 non-200", same["non_200"] == 0),
                   ("identical load: p99 < %.0fx /web/health" % P99_TARGET_RATIO,
                    same["p99_ratio"] < P99_TARGET_RATIO)]
    return checks


def print_report(report):
    fuzz, same = report.get("fuzz"), report.get("identical")
    if fuzz:
        print("fuzz: %d deliveries (seed %s) to %d server(s), sent in %.0f s, queue %s in %.0f s"
              % (fuzz["n"], fuzz["seed"], fuzz["servers"], fuzz["send_s"],
                 "drained" if fuzz["drained"] else "NOT drained", fuzz["drain_s"]))
        for key in ("statuses", "deliveries", "deliveries_of_poisoned", "events", "jobs",
                    "failed_jobs"):
            print("  %s: %s" % (key, fuzz[key]))
        print("  ERROR records: %d, of which serialization failures / deadlocks: %d" % (
            fuzz["error_records"], fuzz["serialization_error_records"]))
        for sample in fuzz["error_samples"]:
            print("    %s" % sample)
        print("  valid neighbours stored: %d of %d (%d stored twice)" % (
            fuzz["neighbours_stored"], fuzz["neighbours_expected"],
            fuzz["neighbours_stored_twice"]))
        for index, what in fuzz["neighbours_lost_samples"]:
            print("    lost: delivery %d (%s)" % (index, what))
        for index, kind, status, what in fuzz["unexpected_statuses"][:10]:
            print("    answer %s to %s delivery %d (%s)" % (status, kind, index, what))
    if same:
        print("identical status: %d requests, %d not 200, p99 %.1f ms vs /web/health %.1f ms "
              "= %.2fx; %d delivery row(s), %d redeliveries counted, %d rejection row(s)" % (
                  same["identical"]["requests"], same["non_200"], same["identical"]["p99_ms"],
                  same["health"]["p99_ms"], same["p99_ratio"], same["deliveries"],
                  same["redeliveries"], same["rejection_rows"]))
    for target, met in verdicts(report):
        print("  [%s] %s" % ("met" if met else "MISSED", target))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--quick", action="store_true", help="500 deliveries, short rounds")
    parser.add_argument("--seed", default="9")
    parser.add_argument("--port", type=int, default=int(os.environ.get("WAC_BENCH_PORT", "8283")))
    parser.add_argument("--only", choices=("fuzz", "identical"))
    parser.add_argument("--two-servers", action="store_true")
    parser.add_argument("--drain-timeout", type=float, default=3600.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.rounds, args.duration = min(args.n, 500), 2, 3.0
        args.drain_timeout = min(args.drain_timeout, 600.0)
    harness.sigterm_as_interrupt()
    report = {}
    if args.only in (None, "fuzz"):
        report["fuzz"] = run_fuzz(args, (args.port, args.port + 2))
    if args.only in (None, "identical"):
        report["identical"] = run_identical(args, args.port + 4)
    path = harness.save_result("fuzz-webhook", report)
    print_report(report)
    print("raw figures: %s" % path)
    return 0 if all(met for _target, met in verdicts(report)) else 1


if __name__ == "__main__":
    sys.exit(main())
