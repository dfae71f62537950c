"""Inbound media benchmarks (issue 13): webhook ingest while media download, and the download
job's memory for a small and a large document, each against a baseline in the same run.

    python3 bench/bench_media.py [--quick] [--only ingest|memory] [--port 8830]
                                 [--fake-port 8797]
                                 [--media-rounds 2]

1. **Ingest.** One Odoo with two workers and queue_job's runner, the generated channels
   (``root.whatsapp.media`` at 1), against the fake Graph server (``tools/fake_graph``, a
   thread of this process, 127.0.0.1). A round POSTs 200 + N signed inbound webhooks (N =
   400; 100 with ``--quick``), 4 at a time, and is timed until every message is stored.
   Media round: the first 200 are images of 1 MB each, each from a new sender, whose
   downloads are enqueued as they are stored and run meanwhile. Baseline round: the same with
   200 texts from 200 new senders instead of the images (no media). The N others come from
   50 known senders. Rounds alternate, baseline first and last (``--media-rounds`` media
   rounds, 2 by default); reported: the ratio of the medians (target <= 1.10), and per round
   what queue_job ran (webhook jobs' run and wait times, downloads started before the round
   ended).
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
WEBHOOK_CHANNEL = "root.whatsapp.webhook"
MEDIA_CHANNEL = "root.whatsapp.media"
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


#: Senders never seen before, shared by the images and the texts in their place: a first
#: message creates a contact and a partner, which costs more than the media does.
NEW_SENDERS = iter(range(10 ** 8))


def text_webhooks(fake, tag, n, new_senders=False):
    """``n`` signed text webhooks, from 50 known senders or each from a new one."""
    out = []
    for i in range(n):
        sender = "55319%08d" % next(NEW_SENDERS) if new_senders else "55119%08d" % (i % 50)
        _waba, wamid, payload = fake.state.inbound_webhook(
            harness.PHONE_NUMBER_ID, sender, "%s %d" % (tag, i))
        out.append((wamid, payload))
    return out


def image_webhooks(fake, n):
    """``n`` signed image webhooks (1 MB each), each from a new sender."""
    phone = dict(fake.state.phones[harness.PHONE_NUMBER_ID])
    out = []
    for _i in range(n):
        item = fake.add_media(harness.WABA_ID, "image/jpeg", size=MB)
        out.append(media_message_webhook(phone, "55319%08d" % next(NEW_SENDERS), "image", item))
    return out


def baseline_webhooks(fake, tag, images, texts):
    """The media round with texts from new senders in place of the images."""
    return text_webhooks(fake, tag, images, new_senders=True) + text_webhooks(fake, tag, texts)


def wait_stored(db, wamids, started, timeout):
    while time.perf_counter() - started < timeout:
        stored = count(db, "SELECT count(*) FROM wac_message WHERE wamid = ANY(%s)", [wamids])
        if stored >= len(wamids):
            return time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError("only %d of %d messages stored after %ss" % (stored, len(wamids),
                                                                    timeout))


def queue_mark(db):
    """The last job id and the database's clock: where a round's jobs begin."""
    (last_id, now), = harness.query(db, "SELECT coalesce(max(id), 0), now() AT TIME ZONE 'UTC' "
                                        "FROM queue_job", None)
    return last_id, now


def round_jobs(db, mark):
    """What queue_job did during a round: per channel, the jobs created since ``mark`` and
    those that started before its end, their median and total run time (date_started to
    date_done) and their median wait (date_created to date_started)."""
    last_id, _now = mark
    rows = harness.query(db, """
        SELECT channel, count(*),
               count(*) FILTER (WHERE date_started IS NOT NULL),
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY extract(epoch FROM date_done - date_started)),
               coalesce(sum(extract(epoch FROM date_done - date_started)), 0),
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY extract(epoch FROM date_started - date_created))
          FROM queue_job WHERE id > %s GROUP BY channel""", (last_id,))
    return {channel: {"jobs": n, "started": started, "run_median_s": float(run or 0),
                      "run_total_s": float(total), "wait_median_s": float(wait or 0)}
            for channel, n, started, run, total, wait in rows}


def ingest_round(db, url, batch, timeout):
    """POST ``batch`` and wait until all its messages are stored: seconds, and the jobs of
    the round (counted at its end, before any download that follows it)."""
    wamids = [w for w, _p in batch]
    mark = queue_mark(db)
    started = time.perf_counter()
    post_all(url, [p for _w, p in batch])
    seconds = wait_stored(db, wamids, started, timeout)
    return seconds, round_jobs(db, mark)


def wait_downloads(db, timeout):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and count(
            db, "SELECT count(*) FROM wac_message WHERE media_state = 'pending'", None):
        time.sleep(0.2)


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def run_ingest(profile, port, fake, media_rounds, channels=None):
    """Baseline and media rounds interleaved (B M B M ... B), so that load drift on a shared
    machine falls on both; the ratio is of the medians."""
    db = harness.clone_db("wac_bench_m_media_ingest")
    harness.odoo_shell(db, SETUP_SCRIPT, "media_setup", env={
        "WAC_BENCH_FAKE_URL": fake.url, "WAC_BENCH_TOKEN": TOKEN})
    texts, images = profile["texts"], profile["images"]
    plan = [("baseline", baseline_webhooks(fake, "base0", images, texts))]
    for n in range(media_rounds):
        plan.append(("media", image_webhooks(fake, images) + text_webhooks(fake, "m%d" % n, texts)))
        plan.append(("baseline", baseline_webhooks(fake, "base%d" % (n + 1), images, texts)))
    result = {"texts": texts, "images": images, "channels": channels or harness.config_channels(),
              "rounds": []}
    held = "media:1:throttle" in result["channels"]
    with harness.OdooServer(db, port, "media_ingest", jobrunner=True, gevent_port=port + 1,
                            channels=result["channels"]) as server:
        # Warm-up: the workers load the registry and the first contact is created.
        ingest_round(db, server.url, text_webhooks(fake, "warm", 20), profile["timeout"])
        for kind, batch in plan:
            kept_before = count(
                db, "SELECT count(*) FROM wac_message WHERE media_state = 'downloaded'", None)
            started = time.perf_counter()
            seconds, jobs = ingest_round(db, server.url, batch, profile["timeout"])
            entry = {"kind": kind, "seconds": seconds, "jobs": jobs}
            if kind == "media":
                entry["kept_during_ingest"] = count(
                    db, "SELECT count(*) FROM wac_message WHERE media_state = 'downloaded'",
                    None) - kept_before
                if not held:  # throttled media channel: the downloads wait for the end
                    wait_downloads(db, profile["timeout"])
                    entry["all_kept_s"] = time.perf_counter() - started
            log("%s: %.2f s for %d messages %s" % (kind, seconds, len(batch), json.dumps(
                {k: v for k, v in entry.items() if k not in ("kind", "seconds")})))
            result["rounds"].append(entry)
        result["images_kept"] = count(
            db, "SELECT count(*) FROM wac_message WHERE media_state = 'downloaded'", None)
        result["load_average"] = os.getloadavg()
    result["baseline_s"] = median([r["seconds"] for r in result["rounds"]
                                   if r["kind"] == "baseline"])
    result["media_s"] = median([r["seconds"] for r in result["rounds"] if r["kind"] == "media"])
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
        rounds = ingest["rounds"]
        lines.append("  ingest of %d webhooks, median of %d rounds without media %.2f s, of %d "
                     "with %d images %.2f s: ratio %.3f (target <= %.2f: %s)" % (
                         ingest["texts"] + ingest["images"],
                         sum(r["kind"] == "baseline" for r in rounds), ingest["baseline_s"],
                         sum(r["kind"] == "media" for r in rounds), ingest["images"],
                         ingest["media_s"], ingest["ratio"], INGEST_TARGET,
                         "met" if ingest["ratio"] <= INGEST_TARGET else "missed"))
        for entry in rounds:
            hook = entry["jobs"].get(WEBHOOK_CHANNEL, {})
            media = entry["jobs"].get(MEDIA_CHANNEL, {})
            lines.append("    %-8s %7.2f s; webhook jobs %d, run median %.3f s, total %.1f s, "
                         "wait median %.2f s; downloads started %d, total %.1f s%s" % (
                             entry["kind"], entry["seconds"], hook.get("jobs", 0),
                             hook.get("run_median_s", 0), hook.get("run_total_s", 0),
                             hook.get("wait_median_s", 0), media.get("started", 0),
                             media.get("run_total_s", 0),
                             "; all images kept %.1f s after the first POST" % entry["all_kept_s"]
                             if "all_kept_s" in entry else ""))
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
    parser.add_argument("--media-rounds", type=int, default=2,
                        help="media rounds, each between two baseline rounds (default 2)")
    parser.add_argument("--channels", help="queue_job channels instead of the generated config's "
                        "(e.g. with root.whatsapp.media:1:throttle=3600 to hold the downloads)")
    args = parser.parse_args(argv)
    profile = PROFILES["quick" if args.quick else "full"]
    results = {"profile": "quick" if args.quick else "full"}
    harness.sigterm_as_interrupt()
    with FakeGraphServer(port=args.fake_port, app_secret=harness.APP_SECRET) as fake:
        if args.only in (None, "memory"):
            results["memory"] = run_memory(fake)
        if args.only in (None, "ingest"):
            results["ingest"] = run_ingest(profile, args.port, fake, args.media_rounds,
                                           args.channels)
    path = harness.save_result("media", results)
    print(report(results))
    print("raw figures: %s" % path)
    ingest = results.get("ingest")
    return 1 if ingest and ingest["ratio"] > INGEST_TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
