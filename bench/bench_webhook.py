"""Webhook benchmarks (issue 3): ingest rate against a trivial route, and history import
against a raw SQL insert, each against a baseline measured in the same run.

    python3 bench/bench_webhook.py [--quick] [--only ingest|ingest-runner|history|memory]
                                   [--source DIR]

1. **Ingest.** One Odoo with ``--workers=2 --max-cron-threads=0`` and no job runner (jobs are
   enqueued for real, nobody runs them). A separate process (``webhook_load.py``) drives
   closed-loop concurrent load, alternating rounds on ``/web/health`` (Odoo's trivial route,
   ``auth="none"``) and on the webhook (distinct signed ``statuses`` webhooks). Reported: rate,
   p50/p99 latency, and Odoo + PostgreSQL CPU per request, with the webhook/trivial ratios.
2. **History.** 10,000 history messages (200 threads x 50 messages, Meta's ``history`` shape
   built by ``tools/fake_graph``) POSTed in chunks under 3 MB to an Odoo with two workers and
   queue_job's runner; timed until every ``wac.message`` row exists. Baseline: the same rows
   re-inserted into ``wac_message`` with one multi-row ``INSERT`` per 1,000 rows.
3. **Memory** (after the history runs, or alone with ``--only memory``). Peak Python memory
   (tracemalloc) of the delivery job and of the history job for a 1x and a 3x payload
   (``webhook_memory_job.py``).

Databases are clones of one installed template (``webhook_harness.py``); everything listens on
127.0.0.1 and is stopped on exit, error or Ctrl-C. Progress goes to stderr, the report to
stdout, the raw figures to ``bench/results/``.
"""

import argparse
import hashlib
import hmac
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import psutil
from psycopg2.extras import execute_values

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import webhook_harness as harness  # noqa: E402

sys.path.insert(0, os.path.join(harness.REPO, "whatsapp_coexistence", "tools"))
from fake_graph.state import FakeState  # noqa: E402  (stdlib only)

WEBHOOK_PATH = "/whatsapp_coexistence/webhook"
META_MAX_BYTES = 3 * 1024 * 1024
INGEST_TARGET_RATIO = 0.60
INGEST_TARGET_P99_MS = 100.0
HISTORY_TARGET_RATIO = 0.20
# One webhook job at a time: history chunks of one account then never run concurrently.
SERIAL_CHANNELS = "root:2,root.whatsapp:1"

PROFILES = {
    "full": {"rounds": 5, "duration": 6.0, "warmup": 2.0, "max_requests": 20000,
             "threads": 200, "per_thread": 50, "mem_threads": 60, "timeout": 600},
    "quick": {"rounds": 2, "duration": 3.0, "warmup": 1.0, "max_requests": 5000,
              "threads": 40, "per_thread": 50, "mem_threads": 20, "timeout": 180},
}


# ------------------------------------------------------------
# CPU ACCOUNTING (Odoo workers and this database's PostgreSQL backends)
# ------------------------------------------------------------

def _cpu_by_pid(server):
    """CPU seconds of every process of ``server`` (``odoo``) and of its database's backends
    (``pg``), by pid."""
    marker = "postgres: %s %s " % (harness.PG["user"], server.dbname)
    groups = {"odoo": list(server.pids()), "pg": []}
    for proc in psutil.process_iter(["cmdline"]):
        if " ".join(proc.info["cmdline"] or []).startswith(marker):
            groups["pg"].append(proc)
    result = {"odoo": {}, "pg": {}}
    for name, procs in groups.items():
        for proc in procs:
            try:
                times = proc.cpu_times()
                result[name][proc.pid] = times.user + times.system
            except psutil.Error:
                pass
    return result


def _cpu_delta(before, after):
    return {name: sum(value - before[name].get(pid, 0.0) for pid, value in after[name].items())
            for name in after}


# ------------------------------------------------------------
# 1. INGEST RATE
# ------------------------------------------------------------

def load_phase(server, kind, concurrency, duration, max_requests, tag):
    """One phase of ``webhook_load.py``; adds the CPU its requests cost the server side."""
    cmd = [sys.executable, os.path.join(HERE, "webhook_load.py"), "--url", server.url,
           "--kind", kind, "--concurrency", str(concurrency), "--duration", str(duration),
           "--max-requests", str(max_requests), "--secret", harness.APP_SECRET, "--tag", tag]
    cpu_before = _cpu_by_pid(server)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    cpu_after = _cpu_by_pid(server)
    if proc.returncode:
        raise RuntimeError("load generator failed: %s" % proc.stderr[-2000:])
    result = json.loads(proc.stdout)
    cpu = _cpu_delta(cpu_before, cpu_after)
    result["odoo_cpu_s"], result["pg_cpu_s"] = cpu["odoo"], cpu["pg"]
    # While the clock runs (bodies are built and signed before it starts).
    result["client_cpu_s"] = result["cpu_s"]
    return result


def pooled(phases):
    ok = sum(p["ok"] for p in phases)
    elapsed = sum(p["elapsed"] for p in phases)
    latencies = sorted(v for p in phases for v in p["latencies_ms"])
    pick = lambda pct: latencies[min(len(latencies) - 1, max(0, round(pct / 100.0 * len(latencies)) - 1))]  # noqa: E731,E501
    return {
        "ok": ok, "requests": sum(p["requests"] for p in phases),
        "failed": sum(p["requests"] - p["ok"] for p in phases),
        "rate": ok / elapsed if elapsed else 0.0,
        "p50_ms": pick(50), "p99_ms": pick(99),
        "odoo_cpu_ms": 1000.0 * sum(p["odoo_cpu_s"] for p in phases) / ok if ok else None,
        "pg_cpu_ms": 1000.0 * sum(p["pg_cpu_s"] for p in phases) / ok if ok else None,
        "client_cpu_ms": 1000.0 * sum(p["client_cpu_s"] for p in phases) / ok if ok else None,
    }


def bench_ingest(profile, concurrency, port, jobrunner=False):
    """Alternate trivial/webhook rounds on one server; return the pooled figures and ratios.

    With ``jobrunner``, queue_job's runner processes what the webhooks store while they come
    in: dispatchers start and finish all the time, so more requests enqueue one, and the
    processing jobs take their share of the two cores.
    """
    db = harness.clone_db("wac_bench_ingest")
    run_tag = "%x%s" % (int(time.time()), "r" if jobrunner else "")
    phases = {"health": [], "webhook": []}
    warm = {}
    label = "ingest-runner" if jobrunner else "ingest"
    with harness.OdooServer(db, port, label, jobrunner=jobrunner) as server:
        harness.log("ingest: warm-up (both routes, %.0f s each)" % profile["warmup"])
        for kind in ("health", "webhook"):
            warm[kind] = load_phase(server, kind, concurrency, profile["warmup"],
                               profile["max_requests"], "%s-warm" % run_tag)
        for rnd in range(profile["rounds"]):
            # Alternate which route goes first, so drifts in machine load hit both alike.
            order = ("health", "webhook") if rnd % 2 == 0 else ("webhook", "health")
            for kind in order:
                result = load_phase(server, kind, concurrency, profile["duration"],
                               profile["max_requests"], "%s-r%d" % (run_tag, rnd))
                harness.log("ingest round %d %-7s %7.1f req/s  p50 %6.1f ms  p99 %6.1f ms  %s" % (
                    rnd + 1, kind, result["rate"], result["p50_ms"], result["p99_ms"],
                    "" if result["ok"] == result["requests"] else
                    "FAILED %d %s" % (result["requests"] - result["ok"],
                                      result["unexpected"] or result["error_samples"])))
                phases[kind].append(result)
    acked = sum(p["ok"] for p in phases["webhook"]) + warm["webhook"]["ok"]
    (deliveries,), = harness.query(db, "SELECT count(*) FROM wac_webhook_delivery")
    jobs = dict(harness.query(db, """
        SELECT method_name, count(*) FROM queue_job
         WHERE model_name = 'wac.webhook.delivery' GROUP BY method_name"""))
    (processed,), = harness.query(db, "SELECT count(*) FROM wac_webhook_delivery"
                                      " WHERE state <> 'received'")
    health, hook = pooled(phases["health"]), pooled(phases["webhook"])
    per_round = [w["rate"] / h["rate"] for h, w in zip(phases["health"], phases["webhook"])]
    return {
        "concurrency": concurrency, "rounds": profile["rounds"],
        "duration": profile["duration"], "health": health, "webhook": hook,
        "rate_ratio": hook["rate"] / health["rate"],
        "round_ratios": per_round,
        "cpu_ratio": ((health["odoo_cpu_ms"] + health["pg_cpu_ms"])
                      / (hook["odoo_cpu_ms"] + hook["pg_cpu_ms"])),
        "jobrunner": jobrunner, "acknowledged": acked, "deliveries": deliveries,
        "dispatchers": jobs.get("_wac_dispatch", 0), "jobs_enqueued": jobs.get("_wac_process", 0),
        "processed": processed,
        "phases": {k: [{x: y for x, y in p.items() if x != "latencies_ms"} for p in v]
                   for k, v in phases.items()},
    }


# ------------------------------------------------------------
# 2. HISTORY IMPORT
# ------------------------------------------------------------

WORDS = [
    "oi", "bom", "dia", "boa", "tarde", "obrigado", "obrigada", "consulta", "horário", "amanhã",
    "hoje", "semana", "que", "vem", "pode", "ser", "confirmado", "confirmar", "remarcar",
    "cancelar", "valor", "pagamento", "pix", "cartão", "endereço", "clínica", "dentista",
    "limpeza", "retorno", "exame", "resultado", "atraso", "chegando", "estou", "aqui", "tudo",
    "bem", "perfeito", "combinado", "até", "logo", "qual", "o", "melhor", "dia", "terça",
    "quarta", "sexta", "às", "14h", "9h30", "manhã", "tarde", "noite", "convênio", "particular",
    "desconto", "orçamento", "enviar", "foto", "documento", "receita", "dúvida", "por", "favor",
    "sim", "não", "talvez", "certo", "ok", "👍", "😊", "🙏",
]


def _text(rng):
    size = rng.choice((2, 3, 4, 6, 8, 10, 14, 20, 30, 45))
    text = " ".join(rng.choice(WORDS) for _ in range(size))
    return text[0].upper() + text[1:] + rng.choice((".", "!", "?", ""))


def history_payloads(threads, per_thread, first_number, chunk_threads, seed,
                     phase_weights=(0.1, 0.6, 0.3)):
    """Signed ``history`` webhooks for ``threads`` x ``per_thread`` messages.

    Built by ``tools/fake_graph`` (``FakeState.history_webhooks``): Meta's envelope, phases by
    message age (day 0-1, 1-90, 90-180), ``chunk_order`` and ``progress``, at most
    ``chunk_threads`` threads per webhook. Message ages follow ``phase_weights``.

    :return: list of ``(body, signature)``
    """
    rng = random.Random(seed)
    bounds = ((60, 86000), (86400 * 1.01, 86400 * 89.9), (86400 * 90.1, 86400 * 179))
    history = []
    for t in range(threads):
        messages = []
        for _m in range(per_thread):
            low, high = bounds[rng.choices((0, 1, 2), weights=phase_weights)[0]]
            message = {"from_me": rng.random() < 0.45, "age_seconds": rng.uniform(low, high),
                       "status": rng.choice(("READ", "READ", "READ", "DELIVERED"))}
            if rng.random() < 0.04:
                message["type"] = "media_placeholder"
            else:
                message.update(type="text", text=_text(rng))
            messages.append(message)
        messages.sort(key=lambda m: -m["age_seconds"])
        history.append({"id": str(first_number + t), "messages": messages})
    seed_data = {
        "app": {"app_id": "1234567890", "app_secret": harness.APP_SECRET},
        "wabas": [{"id": harness.WABA_ID, "name": "Bench Clinic", "phone_numbers": [{
            "id": harness.PHONE_NUMBER_ID, "display_phone_number": harness.DISPLAY_PHONE_NUMBER,
            "verified_name": "Bench Clinic", "is_on_biz_app": True, "history": history}]}],
    }
    state = FakeState(seed=seed_data, config={"history_chunk_threads": chunk_threads})
    key = harness.APP_SECRET.encode()
    result = []
    for payload in state.history_webhooks(state.phones[harness.PHONE_NUMBER_ID]):
        # Meta's serialisation: compact, \\u-escaped (the signature covers these bytes).
        body = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode()
        result.append((body, "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()))
    return result


def _post(url, body, signature):
    request = urllib.request.Request(url + WEBHOOK_PATH, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": signature})
    with urllib.request.urlopen(request, timeout=60) as reply:
        return reply.status, reply.read()


def _history_rows(db):
    (count,), = harness.query(db, "SELECT count(*) FROM wac_message WHERE source = 'history'")
    return count


def raw_insert_baseline(db, repeats=3):
    """Re-insert the imported rows into ``wac_message`` with plain multi-row INSERTs.

    The rows are read back (every stored column but ``id``), deleted, then inserted again with
    ``execute_values`` (1,000 rows per statement) and committed; timed from the first INSERT to
    the COMMIT. Repeated, deleting in between; the table ends as the import left it.
    """
    with harness.connect(db) as conn, conn.cursor() as cr:
        cr.execute("""SELECT column_name FROM information_schema.columns
                       WHERE table_name = 'wac_message' AND column_name != 'id'
                       ORDER BY ordinal_position""")
        columns = [row[0] for row in cr.fetchall()]
        cr.execute("SELECT %s FROM wac_message WHERE source = 'history' ORDER BY id"
                   % ",".join('"%s"' % c for c in columns))
        rows = cr.fetchall()
        insert = "INSERT INTO wac_message (%s) VALUES %%s" % ",".join('"%s"' % c for c in columns)
        timings = []
        for _ in range(repeats):
            cr.execute("DELETE FROM wac_message WHERE source = 'history'")
            conn.commit()
            started = time.perf_counter()
            execute_values(cr, insert, rows, page_size=1000)
            conn.commit()
            timings.append(time.perf_counter() - started)
    return len(rows), timings


def _memory_run(db, threads, per_thread, first_number, label):
    payloads = history_payloads(threads, per_thread, first_number, chunk_threads=threads,
                                seed=first_number, phase_weights=(1, 0, 0))
    assert len(payloads) == 1, "the memory payload must be a single chunk"
    body, signature = payloads[0]
    with tempfile.NamedTemporaryFile(prefix="wac_bench_", suffix=".json", delete=False) as out:
        out.write(body)
    try:
        with open(os.path.join(HERE, "webhook_memory_job.py")) as handle:
            script = handle.read()
        result = harness.odoo_shell(db, script, label, env={
            "WAC_BENCH_BODY": out.name, "WAC_BENCH_SIGNATURE": signature})
    finally:
        os.unlink(out.name)
    result["messages"] = threads * per_thread
    return result


def _import_run(profile, port, payloads, total, label, channels):
    """POST ``payloads`` to a fresh database and wait for ``total`` history rows; then time
    the raw INSERT of the same rows into the same table."""
    db = harness.clone_db("wac_bench_history_%s" % label)
    with harness.OdooServer(db, port, "history_%s" % label, jobrunner=True,
                            channels=channels) as server:
        started = time.perf_counter()
        for body, signature in payloads:
            status, answer = _post(server.url, body, signature)
            if status != 200 or b'"ok"' not in answer:
                raise RuntimeError("history webhook answered %s %r" % (status, answer[:200]))
        posted = time.perf_counter() - started
        deadline = started + profile["timeout"]
        count = 0
        while count < total and time.perf_counter() < deadline:
            time.sleep(0.05)
            count = _history_rows(db)
        elapsed = time.perf_counter() - started
        # Let the jobs finish their bookkeeping (progress, states) before stopping Odoo.
        for _ in range(200):
            (busy,), = harness.query(db, "SELECT count(*) FROM queue_job WHERE state NOT IN "
                                         "('done', 'failed', 'cancelled')")
            if not busy:
                break
            time.sleep(0.1)
    if count < total:
        raise RuntimeError("only %d of %d history messages after %ss; see %s" % (
            count, total, profile["timeout"], server.logfile))
    jobs = dict(harness.query(db, "SELECT state, count(*) FROM queue_job GROUP BY state"))
    # queue_job counts the first run as a try: retries are the runs beyond one per job.
    (retries,), = harness.query(db, "SELECT coalesce(sum(greatest(retry - 1, 0)), 0) "
                                    "FROM queue_job")
    (busy_s,), = harness.query(db, "SELECT coalesce(sum(exec_time), 0) FROM queue_job "
                                   "WHERE state = 'done'")
    rows, raw_timings = raw_insert_baseline(db)
    raw_s = statistics.median(raw_timings)
    harness.log("history %s: imported in %.2f s (%d job retries); raw INSERT %s s" % (
        label, elapsed, retries, ", ".join("%.3f" % t for t in raw_timings)))
    return db, {
        "channels": channels or "%s (config)" % harness.config_channels(), "post_s": posted,
        "import_s": elapsed, "rate": total / elapsed, "jobs": jobs, "job_retries": retries,
        "job_exec_s": busy_s, "raw_rows": rows, "raw_s": raw_timings, "raw_rate": rows / raw_s,
        "rate_ratio": (total / elapsed) / (rows / raw_s),
    }


def bench_history(profile, port, variants):
    """End to end import for each queue_job channel variant, then the memory runs."""
    threads, per_thread = profile["threads"], profile["per_thread"]
    total = threads * per_thread
    payloads = history_payloads(threads, per_thread, 5511900000000, chunk_threads=100, seed=7)
    sizes = [len(body) for body, _sig in payloads]
    assert max(sizes) < META_MAX_BYTES, "a history webhook exceeds 3 MB: %d" % max(sizes)
    harness.log("history: %d messages in %d webhooks (%.0f KB to %.0f KB, %.1f MB in all)" % (
        total, len(payloads), min(sizes) / 1024, max(sizes) / 1024, sum(sizes) / 2**20))
    runs, db = [], None
    for label, channels in variants:
        db, run = _import_run(profile, port, payloads, total, label, channels)
        run["label"] = label
        runs.append(run)

    return {"messages": total, "webhooks": len(payloads), "webhook_bytes": sizes,
            "runs": runs, "memory": bench_memory(profile, db)}


def bench_memory(profile, db=None):
    """Peak memory of the two jobs for a 1x and a 3x single-chunk history webhook, in ``db``
    (a fresh clone of the template when ``None``)."""
    db = db or harness.clone_db("wac_bench_history_memory")
    mem_threads, per_thread = profile["mem_threads"], profile["per_thread"]
    memory = {}
    for factor in (1, 3):
        harness.log("history memory: %dx payload (%d messages)" % (
            factor, factor * mem_threads * per_thread))
        memory["%dx" % factor] = _memory_run(db, factor * mem_threads, per_thread,
                                             5521900000000 + factor * 10000,
                                             "history_memory_%dx" % factor)
    return memory


# ------------------------------------------------------------
# REPORT
# ------------------------------------------------------------

def _verdict(ok):
    return "met" if ok else "MISSED"


def report(results, profile_name):
    lines = []
    for ingest in (results.get("ingest"), results.get("ingest_runner")):
        if not ingest:
            continue
        h, w = ingest["health"], ingest["webhook"]
        ratio = ingest["rate_ratio"]
        lines += [
            "Ingest (%s, concurrency %d, %d x %.0f s per route, alternating; %s)" % (
                profile_name, ingest["concurrency"], ingest["rounds"], ingest["duration"],
                "queue_job's runner processing the deliveries meanwhile" if ingest["jobrunner"]
                else "no job runner: the jobs are enqueued, nobody runs them"),
            "| metric | /web/health | webhook | webhook vs trivial | target |",
            "|---|---|---|---|---|",
            "| rate (req/s) | %.0f | %.0f | **%.2f** (median round %.2f; rounds %s) "
            "| >= %.2f: %s |" % (
                h["rate"], w["rate"], ratio, statistics.median(ingest["round_ratios"]),
                ", ".join("%.2f" % r for r in ingest["round_ratios"]),
                INGEST_TARGET_RATIO, _verdict(ratio >= INGEST_TARGET_RATIO)),
            "| p50 latency (ms) | %.1f | %.1f | %.2fx | |" % (
                h["p50_ms"], w["p50_ms"], w["p50_ms"] / h["p50_ms"]),
            "| p99 latency (ms) | %.1f | %.1f | %.2fx | < %.0f ms: %s |" % (
                h["p99_ms"], w["p99_ms"], w["p99_ms"] / h["p99_ms"], INGEST_TARGET_P99_MS,
                _verdict(w["p99_ms"] < INGEST_TARGET_P99_MS)),
            "| server CPU per request: Odoo + PostgreSQL (ms) | %.2f + %.2f | %.2f + %.2f |"
            " %.2f (trivial/webhook) | |" % (
                h["odoo_cpu_ms"], h["pg_cpu_ms"], w["odoo_cpu_ms"], w["pg_cpu_ms"],
                ingest["cpu_ratio"]),
            "| load generator CPU per request (ms) | %.2f | %.2f | | |" % (
                h["client_cpu_ms"], w["client_cpu_ms"]),
            "| requests (non-200) | %d (%d) | %d (%d) | | |" % (
                h["requests"], h["failed"], w["requests"], w["failed"]),
            "",
            "Webhooks acknowledged: %d; deliveries stored: %d; dispatcher jobs enqueued: %d "
            "(%.3f per webhook); processing jobs enqueued by them: %d; deliveries processed "
            "when the load stopped: %d." % (
                ingest["acknowledged"], ingest["deliveries"], ingest["dispatchers"],
                ingest["dispatchers"] / max(1, ingest["acknowledged"]), ingest["jobs_enqueued"],
                ingest["processed"]),
            "",
        ]
    history = results.get("history")
    if history:
        lines += [
            "History import (%s: %d messages in %d webhooks of %.0f-%.0f KB, jobs run by "
            "queue_job's runner, 2 workers)" % (
                profile_name, history["messages"], history["webhooks"],
                min(history["webhook_bytes"]) / 1024, max(history["webhook_bytes"]) / 1024),
            "| queue_job channels | Odoo vs raw INSERT | target | Odoo (msg/s) | raw (msg/s) "
            "| Odoo end to end (s) | POSTs (s) | job retries | raw INSERT (s, median of 3) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for run in history["runs"]:
            lines.append("| %s | **%.3f** | >= %.2f: %s | %.0f | %.0f | %.2f | %.2f | %d | %.3f |"
                         % (
                run["channels"], run["rate_ratio"], HISTORY_TARGET_RATIO,
                _verdict(run["rate_ratio"] >= HISTORY_TARGET_RATIO), run["rate"],
                run["raw_rate"], run["import_s"], run["post_s"], run["job_retries"],
                statistics.median(run["raw_s"])))
        lines.append("")
    memory = results.get("memory") or (history or {}).get("memory")
    if memory:
        m1, m3 = memory["1x"], memory["3x"]
        lines += [
            "Peak Python memory of the import jobs (tracemalloc, jobs run in `odoo shell`)",
            "| payload | messages | body (KB) | delivery job peak (MB) | history job peak (MB)"
            " | held at the first batch (MB) | largest batch rise (MB) | batches "
            "| delivery / history job (s) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, mem in (("1x", m1), ("3x", m3)):
            lines.append("| %s | %d | %.0f | %.1f | %.1f | %.1f | %.1f | %d | %.2f / %.2f |" % (
                name, mem["messages"], mem["size"] / 1024, mem["delivery_job_peak_mb"],
                mem["event_job_peak_mb"], mem["held_mb"] or 0, mem["batch_rise_mb"] or 0,
                mem["batches"], mem["delivery_job_s"], mem["event_job_s"]))
        lines.append("| 3x / 1x | %.2f | %.2f | **%.2f** | **%.2f** | %.2f | %.2f | | |" % (
            m3["messages"] / m1["messages"], m3["size"] / m1["size"],
            m3["delivery_job_peak_mb"] / m1["delivery_job_peak_mb"],
            m3["event_job_peak_mb"] / m1["event_job_peak_mb"],
            (m3["held_mb"] or 0) / (m1["held_mb"] or 1),
            (m3["batch_rise_mb"] or 0) / (m1["batch_rise_mb"] or 1)))
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--only", choices=("ingest", "ingest-runner", "history", "memory"))
    parser.add_argument("--concurrency", type=int, default=4,
                        help="concurrent clients of the ingest bench (default 4)")
    parser.add_argument("--port", type=int, default=8369,
                        help="HTTP port of the ingest server; history uses port+1")
    parser.add_argument("--channels", action="append", help="queue_job channels of a history "
                        "run, repeatable (default: the config's, then %s)" % SERIAL_CHANNELS)
    parser.add_argument("--source", help="measure the addon in this directory instead of the "
                        "checkout (e.g. a `git archive HEAD` export)")
    args = parser.parse_args(argv)
    harness.sigterm_as_interrupt()
    if args.source:
        harness.use_source(args.source)
    profile_name = "quick" if args.quick else "full"
    profile = PROFILES[profile_name]
    results = {"profile": profile_name, "source": harness.SOURCE["root"],
               "machine": {"nproc": os.cpu_count()}}
    try:
        if args.only in (None, "ingest"):
            results["ingest"] = bench_ingest(profile, args.concurrency, args.port)
        if args.only in (None, "ingest-runner"):
            results["ingest_runner"] = bench_ingest(profile, args.concurrency, args.port,
                                                    jobrunner=True)
        if args.only in (None, "history"):
            results["history"] = bench_history(
                profile, args.port + 1,
                [("c%d" % n, c) for n, c in enumerate(args.channels)] if args.channels
                else [("default", None), ("serial", SERIAL_CHANNELS)])
        if args.only == "memory":
            results["memory"] = bench_memory(profile)
    except KeyboardInterrupt:
        harness.log("interrupted: servers stopped")
        return 130
    text = report(results, profile_name)
    print(text)
    path = harness.save_result("webhook", results)
    harness.log("raw figures: %s" % os.path.relpath(path, harness.REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
