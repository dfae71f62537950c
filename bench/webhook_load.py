"""Closed-loop HTTP load on 127.0.0.1, run as a process of its own by ``bench_webhook.py``.

``python3 bench/webhook_load.py --url http://127.0.0.1:8369 --kind webhook|identical|health
--concurrency 4 --duration 5 --max-requests 20000 --secret S --tag run1``

``concurrency`` threads each send one request at a time, on a new connection every time: Odoo's
prefork workers speak HTTP/1.0 and close the connection after each answer, as they do behind a
proxy. Webhook bodies are Meta ``statuses`` webhooks (tests/payloads.py), each with its own
wamid so that none is a byte-identical redelivery (``identical``: one body, sent every time,
answered ``ok`` once and ``duplicate`` after); they are built and signed before the clock
starts. Prints one JSON object: counts, elapsed seconds and latency percentiles (ms).
"""

import argparse
import hashlib
import hmac
import http.client
import itertools
import json
import os
import sys
import threading
import time
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "whatsapp_coexistence", "tests"))
import payloads  # noqa: E402  (pure data, no Odoo)

WEBHOOK_PATH = "/whatsapp_coexistence/webhook"
HEALTH_PATH = "/web/health"


def status_bodies(count, secret, tag):
    """``count`` distinct signed status webhooks, serialised the way Meta does."""
    key = secret.encode()
    base = int(time.time())
    statuses = ("sent", "delivered", "read")
    result = []
    for n in range(count):
        wamid = "wamid.bench-%s-%08d" % (tag, n)
        body = payloads.dumps(payloads.statuses(
            items=[(wamid, statuses[n % 3], base + n % 600)], pricing=True,
            biz_opaque_callback_data="bench:%s:%d" % (tag, n)))
        sig = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        result.append((body, sig))
    return result


def percentile(sorted_values, pct):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(pct / 100.0 * len(sorted_values)) - 1))
    return sorted_values[index]


def run(url, kind, concurrency, duration, max_requests, secret, tag):
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    # "identical": the same signed status again and again (Meta redelivering one webhook).
    bodies = None if kind == "health" else status_bodies(
        1 if kind == "identical" else max_requests, secret, tag)
    counter = itertools.count()
    lock = threading.Lock()
    latencies, statuses, errors = [], {}, []
    unexpected = []
    start_gate = threading.Event()
    deadline = [0.0]

    def worker():
        local_lat, local_status = [], {}
        start_gate.wait()
        while time.perf_counter() < deadline[0]:
            n = next(counter)
            if n >= max_requests:
                break
            t0 = time.perf_counter()
            try:
                conn = http.client.HTTPConnection(host, port, timeout=30)
                if kind != "health":
                    body, sig = bodies[n % len(bodies)]
                    conn.request("POST", WEBHOOK_PATH, body=body, headers={
                        "Content-Type": "application/json", "X-Hub-Signature-256": sig,
                        "User-Agent": "facebookexternalua"})
                else:
                    conn.request("GET", HEALTH_PATH)
                reply = conn.getresponse()
                data = reply.read()
                conn.close()
            except OSError as error:
                with lock:
                    errors.append(repr(error))
                continue
            local_lat.append(time.perf_counter() - t0)
            local_status[reply.status] = local_status.get(reply.status, 0) + 1
            answers = (b'"ok"', b'"duplicate"') if kind == "identical" else (b'"ok"',)
            if reply.status != 200 or (kind != "health" and not any(a in data for a in answers)):
                with lock:
                    if len(unexpected) < 5:
                        unexpected.append("%s %r" % (reply.status, data[:200]))
        with lock:
            latencies.extend(local_lat)
            for code, hits in local_status.items():
                statuses[code] = statuses.get(code, 0) + hits

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    cpu_started = time.process_time()
    started = time.perf_counter()
    deadline[0] = started + duration
    start_gate.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    latencies.sort()
    ok = statuses.get(200, 0)
    return {
        "kind": kind, "concurrency": concurrency, "requests": len(latencies) + len(errors),
        "ok": ok, "statuses": {str(k): v for k, v in statuses.items()}, "errors": len(errors),
        "error_samples": errors[:3], "unexpected": unexpected, "elapsed": elapsed,
        "cpu_s": cpu,
        "rate": ok / elapsed if elapsed else 0.0,
        "p50_ms": 1000 * percentile(latencies, 50) if latencies else None,
        "p99_ms": 1000 * percentile(latencies, 99) if latencies else None,
        "max_ms": 1000 * latencies[-1] if latencies else None,
        "latencies_ms": [round(1000 * v, 3) for v in latencies],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", choices=("webhook", "identical", "health"), required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=20000)
    parser.add_argument("--secret", default="")
    parser.add_argument("--tag", default="x")
    args = parser.parse_args(argv)
    result = run(args.url, args.kind, args.concurrency, args.duration, args.max_requests,
                 args.secret, args.tag)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
