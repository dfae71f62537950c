"""Inbound media benchmarks (issue 13): webhook ingest while media download, and the download
job's memory for a small and a large document, each against a baseline in the same run.

    python3 bench/bench_media.py [--quick] [--only ingest|memory] [--port 8830]
                                 [--fake-port 8797]

1. **Ingest.** One Odoo with two workers and queue_job's runner, the generated channels
   (``root.whatsapp.media`` at 1), against the fake Graph server (``tools/fake_graph``, a
   thread of this process, 127.0.0.1). A round POSTs 200 + N signed inbound webhooks (N =
   400; 100 with ``--quick``), 4 at a time, and is timed until every message is stored.
   Measured round: the first 200 are images of 1 MB each, whose downloads are enqueued as
   they are stored and run meanwhile. Baseline: the same round with 200 texts instead of the
   images (no media), the mean of a round before and a round after. Reported: the ratio
   measured / baseline (target <= 1.10), how many images were kept when the ingest ended,
   and when all were.
2. **Memory.** ``media_memory_job.py`` in ``odoo shell``, a fresh process per size: the peak
   Python memory (tracemalloc) and the max-RSS growth of one download job for a 1 MB and a
   50 MB PDF. Reported: the ratio of the peaks (streamed: about 1).

Databases are clones of the installed template (``webhook_harness.py``); everything is stopped
on exit. Progress goes to stderr, the report to stdout, the raw figures to ``bench/results/``.
"""

import argparse
import concurrent.futures
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import webhook_harness as harness  # noqa: E402
from bench_common import log  # noqa: E402

sys.path.insert(0, os.path.join(harness.REPO, "whatsapp_coexistence", "tools"))
from fake_graph import FakeGraphServer  # noqa: E402
from fake_graph.media import media_message_webhook  # noqa: E402

MB = 1024 * 1024
TOKEN = "EAAGfakeclinic0000000000000000000001"  # the clinic's token in seed_demo.json
INGEST_TARGET = 1.10
PROFILES = {"full": {"texts": 400, "images": 200, "timeout": 900},
            "quick": {"texts": 100, "images": 200, "timeout": 600}}
SETUP_SCRIPT = """
import os
from odoo.addons.whatsapp_coexistence.const import PARAM_GRAPH_BASE_URL
env["ir.config_parameter"].sudo().set_param(PARAM_GRAPH_BASE_URL, os.environ["WAC_BENCH_FAKE_URL"])
env["wac.account"].sudo().search([], limit=1)._wac_set_token(os.environ["WAC_BENCH_TOKEN"])
env.cr.commit()
print("BENCH_JSON {}")
"""


def sign(body):
    return "sha256=" + hmac.new(harness.APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def post(url, payload):
    body = json.dumps(payload, ensure_ascii=True).encode()
    request = urllib.request.Request(url + "/whatsapp_coexistence/webhook", data=body,
                                     method="POST", headers={
                                         "Content-Type": "application/json",
                                         "X-Hub-Signature-256": sign(body)})
    with urllib.request.urlopen(request, timeout=60) as reply:
        if reply.status != 200:
            raise RuntimeError("webhook answered %s" % reply.status)


def post_all(url, payloads):
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda p: post(url, p), payloads))


def count(db, sql, params):
    (value,), = harness.query(db, sql, params)
    return value


def text_webhooks(fake, tag, n):
    out = []
    for i in range(n):
        sender = "55119%08d" % (i % 50)
        _waba, wamid, payload = fake.state.inbound_webhook(
            harness.PHONE_NUMBER_ID, sender, "%s %d" % (tag, i))
        out.append((wamid, payload))
    return out


def image_webhooks(fake, n):
    phone = dict(fake.state.phones[harness.PHONE_NUMBER_ID])
    out = []
    for i in range(n):
        item = fake.add_media(harness.WABA_ID, "image/jpeg", size=MB)
        out.append(media_message_webhook(phone, "55219%08d" % i, "image", item))
    return out


def wait_stored(db, wamids, started, timeout):
    while time.perf_counter() - started < timeout:
        stored = count(db, "SELECT count(*) FROM wac_message WHERE wamid = ANY(%s)", [wamids])
        if stored >= len(wamids):
            return time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError("only %d of %d messages stored after %ss" % (stored, len(wamids),
                                                                    timeout))


def ingest_round(db, url, batch, timeout):
    wamids = [w for w, _p in batch]
    started = time.perf_counter()
    post_all(url, [p for _w, p in batch])
    return wait_stored(db, wamids, started, timeout)


def run_ingest(profile, port, fake):
    db = harness.clone_db("wac_bench_m_media_ingest")
    harness.odoo_shell(db, SETUP_SCRIPT, "media_setup", env={
        "WAC_BENCH_FAKE_URL": fake.url, "WAC_BENCH_TOKEN": TOKEN})
    texts, images = profile["texts"], profile["images"]
    before = text_webhooks(fake, "before", images + texts)
    media = image_webhooks(fake, images) + text_webhooks(fake, "media", texts)
    after = text_webhooks(fake, "after", images + texts)
    result = {"texts": texts, "images": images, "channels": harness.config_channels()}
    with harness.OdooServer(db, port, "media_ingest", jobrunner=True, gevent_port=port + 1,
                            channels=result["channels"]) as server:
        # Warm-up: the workers load the registry and the first contact is created.
        ingest_round(db, server.url, text_webhooks(fake, "warm", 20), profile["timeout"])
        result["before_s"] = ingest_round(db, server.url, before, profile["timeout"])
        log("no media: %.2f s for %d messages" % (result["before_s"], len(before)))
        started = time.perf_counter()
        result["media_s"] = ingest_round(db, server.url, media, profile["timeout"])
        result["kept_at_end_of_ingest"] = count(
            db, "SELECT count(*) FROM wac_message WHERE media_state = 'downloaded'", None)
        log("%d images among them: %.2f s (%d images kept by then)" % (
            images, result["media_s"], result["kept_at_end_of_ingest"]))
        deadline = time.perf_counter() + profile["timeout"]
        while time.perf_counter() < deadline and count(
                db, "SELECT count(*) FROM wac_message WHERE media_state = 'pending'", None):
            time.sleep(0.2)
        result["images_all_kept_s"] = time.perf_counter() - started
        result["images_kept"] = count(
            db, "SELECT count(*) FROM wac_message WHERE media_state = 'downloaded'", None)
        result["after_s"] = ingest_round(db, server.url, after, profile["timeout"])
        log("no media again: %.2f s" % result["after_s"])
    result["baseline_s"] = (result["before_s"] + result["after_s"]) / 2
    result["ratio"] = result["media_s"] / result["baseline_s"]
    harness.drop_db(db)
    return result


def run_memory(fake):
    db = harness.clone_db("wac_bench_m_media_memory")
    with open(os.path.join(HERE, "media_memory_job.py")) as handle:
        script = handle.read()
    result = {}
    for size_mb in (1, 50):
        item = fake.add_media(harness.WABA_ID, "application/pdf", size=size_mb * MB)
        figures = harness.odoo_shell(db, script, "media_memory_%dmb" % size_mb, env={
            "WAC_BENCH_FAKE_URL": fake.url, "WAC_BENCH_TOKEN": TOKEN,
            "WAC_BENCH_MEDIA_ID": item["id"], "WAC_BENCH_MIME": "application/pdf"})
        if figures["state"] != "downloaded" or figures["kept_bytes"] != size_mb * MB:
            raise RuntimeError("the %d MB document was not kept: %s" % (size_mb, figures))
        log("%d MB: peak %.2f MB, max RSS +%.1f MB, %.2f s" % (
            size_mb, figures["peak_mb"], figures["maxrss_growth_mb"], figures["job_s"]))
        result["%dmb" % size_mb] = figures
    result["peak_ratio"] = result["50mb"]["peak_mb"] / result["1mb"]["peak_mb"]
    harness.drop_db(db)
    return result


def report(results):
    lines = ["inbound media (bench/bench_media.py)"]
    ingest = results.get("ingest")
    if ingest:
        lines.append("  ingest of %d webhooks: %.2f s without media (%.2f / %.2f), "
                     "%.2f s with %d images downloading: ratio %.3f (target <= %.2f: %s); "
                     "all images kept %.1f s after the first was posted (%d kept)" % (
                         ingest["texts"] + ingest["images"], ingest["baseline_s"],
                         ingest["before_s"], ingest["after_s"], ingest["media_s"],
                         ingest["images"],
                         ingest["ratio"], INGEST_TARGET,
                         "met" if ingest["ratio"] <= INGEST_TARGET else "missed",
                         ingest["images_all_kept_s"], ingest["images_kept"]))
    memory = results.get("memory")
    if memory:
        lines.append("  download job peak: 1 MB %.2f MB, 50 MB %.2f MB (ratio %.2f); max RSS "
                     "growth %.1f / %.1f MB" % (
                         memory["1mb"]["peak_mb"], memory["50mb"]["peak_mb"],
                         memory["peak_ratio"], memory["1mb"]["maxrss_growth_mb"],
                         memory["50mb"]["maxrss_growth_mb"]))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("ingest", "memory"))
    parser.add_argument("--port", type=int, default=8830)
    parser.add_argument("--fake-port", type=int, default=8797)
    args = parser.parse_args(argv)
    profile = PROFILES["quick" if args.quick else "full"]
    results = {"profile": "quick" if args.quick else "full"}
    harness.sigterm_as_interrupt()
    with FakeGraphServer(port=args.fake_port, app_secret=harness.APP_SECRET) as fake:
        if args.only in (None, "memory"):
            results["memory"] = run_memory(fake)
        if args.only in (None, "ingest"):
            results["ingest"] = run_ingest(profile, args.port, fake)
    path = harness.save_result("media", results)
    print(report(results))
    print("raw figures: %s" % path)
    ingest = results.get("ingest")
    return 1 if ingest and ingest["ratio"] > INGEST_TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
