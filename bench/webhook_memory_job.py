"""Run inside ``odoo shell`` (stdin) by ``bench_webhook.py``: peak Python memory of one history
import, measured with tracemalloc in the process that runs the jobs.

Input (environment): ``WAC_BENCH_BODY`` (path of a signed history webhook body) and
``WAC_BENCH_SIGNATURE``. The delivery is stored through the controller's entry point
(``_wac_ingest``, as the public user, like the HTTP route), committed, then its two jobs run
here, directly, one after the other, as the queue_job runner would run them: the delivery's job
(``_wac_process``: split into events) and the history event's job (``_wac_job_process``).

Besides the peak of each job it records, for the history job:

* ``held``: memory held when the first batch starts (``_wac_existing_wamids`` starts each
  batch of ``BATCH_SIZE`` rows), relative to the start of the job: what does not depend on the
  batches. Before the body was streamed this was the decoded payload (``json.loads`` of the
  event's payload plus ``webhook.history()``'s typed objects); now it is the body's reader and
  parser, the chunk headers and the first batch's messages;
* ``batch``: the largest rise above the level at the start of a batch during that batch,
  i.e. what the batching bounds.

Prints ``BENCH_JSON {...}``.
"""

import json
import os
import resource
import time
import tracemalloc

env = globals()["env"]  # odoo shell runs this file with env in its namespace

from odoo import api  # noqa: E402

MB = 1024.0 * 1024.0
marks = {"batches": []}


def _mem():
    current, peak = tracemalloc.get_traced_memory()
    return current / MB, peak / MB


Message = type(env["wac.message"])
original_existing = Message._wac_existing_wamids


def traced_existing(self, company_id, wamids):
    current, peak = _mem()
    marks["batches"].append((current, peak))
    tracemalloc.reset_peak()
    return original_existing(self, company_id, wamids)


with open(os.environ["WAC_BENCH_BODY"], "rb") as handle:
    raw = handle.read()
signature = os.environ["WAC_BENCH_SIGNATURE"]

public = env.ref("base.public_user")
public_env = api.Environment(env.cr, public.id, {})
status, reason = public_env["wac.webhook.delivery"].sudo()._wac_ingest(raw, signature, "127.0.0.1")
env.cr.commit()
delivery = env["wac.webhook.delivery"].sudo().search([], limit=1, order="id desc")
del raw
result = {"status": status, "reason": reason, "size": delivery.size}

# The delivery's job, in a fresh environment like a queue_job worker.
env.invalidate_all()
tracemalloc.start()
started = time.perf_counter()
delivery._wac_process()
result["delivery_job_s"] = time.perf_counter() - started
result["delivery_job_peak_mb"] = _mem()[1]
tracemalloc.stop()
env.cr.commit()

event = delivery.event_ids.filtered(lambda e: e.field == "history")
result["event_state_after_delivery_job"] = event.state
result["event_payload_bytes"] = len(event.payload or "")
event_id = event.id

# The history event's job (enqueued by the delivery's job when the change is large).
env.invalidate_all()
Message._wac_existing_wamids = traced_existing
try:
    tracemalloc.start()
    base = _mem()[0]
    started = time.perf_counter()
    summary = env["wac.webhook.event"].sudo().browse(event_id)._wac_job_process()
    result["event_job_s"] = time.perf_counter() - started
    end_current, end_peak = _mem()
    marks["batches"].append((end_current, end_peak))
    result["event_job_peak_mb"] = max([end_peak] + [p for _c, p in marks["batches"]]) - base
    tracemalloc.stop()
finally:
    Message._wac_existing_wamids = original_existing
env.cr.commit()

# Interval i runs from the i-th mark to the (i+1)-th: its peak is read at the (i+1)-th mark.
rises = [marks["batches"][i + 1][1] - marks["batches"][i][0]
         for i in range(len(marks["batches"]) - 1)]
result.update({
    "summary": summary,
    "event_state": env["wac.webhook.event"].sudo().browse(event_id).state,
    "held_mb": (marks["batches"][0][0] - base) if len(marks["batches"]) > 1 else None,
    "batches": len(rises),
    "batch_rise_mb": max(rises) if rises else None,
    "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
})
print("BENCH_JSON " + json.dumps(result))
