"""Run inside ``odoo shell`` (stdin) by ``bench_media.py``: peak memory of one inbound media
download job, measured in the process that runs it.

Input (environment): ``WAC_BENCH_FAKE_URL`` (the fake Graph server), ``WAC_BENCH_TOKEN`` (the
tenant's token there), ``WAC_BENCH_MEDIA_ID`` and ``WAC_BENCH_MIME``. A ``document`` message
carrying the media id is stored and committed as the webhook job would store it; then its
download job (``_wac_job_download_media``) runs here, directly, as the queue_job runner would.

Reported: tracemalloc's peak during the job (Python allocations, the chunks included), the
growth of the process's maximum RSS during the job (what tracemalloc does not see: C buffers
of ``requests``/``urllib3`` and the SSL layer), the state and size kept.

Prints ``BENCH_JSON {...}``.
"""

import json
import os
import resource
import time
import tracemalloc

env = globals()["env"]  # odoo shell runs this file with env in its namespace

from odoo.addons.whatsapp_coexistence.const import PARAM_GRAPH_BASE_URL  # noqa: E402

MB = 1024.0 * 1024.0


def maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


env["ir.config_parameter"].sudo().set_param(PARAM_GRAPH_BASE_URL,
                                            os.environ["WAC_BENCH_FAKE_URL"])
account = env["wac.account"].sudo().search([], limit=1)
account._wac_set_token(os.environ["WAC_BENCH_TOKEN"])
media_id = os.environ["WAC_BENCH_MEDIA_ID"]
message = env["wac.message"].sudo().create({
    "company_id": account.company_id.id, "account_id": account.id,
    "wamid": "wamid.bench.media.%s" % media_id, "direction": "in", "source": "customer",
    "message_type": "document", "media_id": media_id,
    "media_mime_type": os.environ["WAC_BENCH_MIME"], "media_state": "pending",
    "media_filename": "bench.pdf", "status": "received",
})
env.cr.commit()
message_id = message.id

env.invalidate_all()
rss_before = maxrss_mb()
tracemalloc.start()
started = time.perf_counter()
summary = env["wac.message"].sudo().browse(message_id)._wac_job_download_media(media_id)
elapsed = time.perf_counter() - started
_current, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss_after = maxrss_mb()
env.cr.commit()

message = env["wac.message"].sudo().browse(message_id)
print("BENCH_JSON " + json.dumps({
    "summary": summary, "state": message.media_state,
    "kept_bytes": message.media_attachment_id.file_size, "job_s": elapsed,
    "peak_mb": peak / MB, "maxrss_before_mb": rss_before,
    "maxrss_growth_mb": rss_after - rss_before,
}))
