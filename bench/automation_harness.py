"""Plumbing for ``bench_automation.py``: databases, an in-process Odoo, a server subprocess.

Nothing here is measured. Everything listens on 127.0.0.1 only.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time

from bench_common import ODOO_SH, PG, PG_SH, REPO, log, odoo_bin, run_dir

RUN_DIR = run_dir("bench-automation")
CONF = os.path.join(RUN_DIR, "odoo.conf")
LOG_DIR = os.path.join(RUN_DIR, "logs")

sys.path.insert(0, os.path.join(REPO, "whatsapp_coexistence", "tools"))


def pg(*args):
    return subprocess.run([*args, "-h", PG["host"], "-p", str(PG["port"]), "-U", PG["user"]],
                          check=False, capture_output=True, text=True)


def fresh_database(name):
    """Drop ``name`` and install the addon into a new database of that name (no demo)."""
    subprocess.run([PG_SH, "start"], check=True, capture_output=True)
    pg("dropdb", "--if-exists", name)
    os.makedirs(LOG_DIR, exist_ok=True)
    log_path = os.path.join(LOG_DIR, "install_%s.log" % name)
    log("installing whatsapp_coexistence into %s (log: %s)" % (name, log_path))
    with open(log_path, "w") as out:
        subprocess.run([ODOO_SH, "-d", name, "-i", "whatsapp_coexistence", "--without-demo=all",
                        "--stop-after-init", "--http-port=0", "--log-level=warn"],
                       check=True, stdout=out, stderr=subprocess.STDOUT)


def drop_database(name):
    pg("dropdb", "--if-exists", name)


_CONFIGURED = []


def odoo_registry(dbname):
    """Load Odoo in this process (config written by scripts/odoo.sh) and return the registry."""
    import odoo
    from odoo.tools import config

    if not _CONFIGURED:  # Odoo's config parser runs once per process
        config.parse_config(["-c", CONF, "-d", dbname, "--log-level=warn"])
        _CONFIGURED.append(True)
    config["db_name"] = dbname
    from odoo.modules.registry import Registry

    return odoo, Registry(dbname)


@contextlib.contextmanager
def odoo_server(dbname, port, workers=2, log_name="server", jobrunner=True):
    """Run Odoo with ``workers`` HTTP workers and the queue_job runner; stop it on exit.

    Same configuration file as ``scripts/odoo.sh`` (written by :func:`fresh_database`).

    :param bool jobrunner: ``False`` leaves queue_job out of the server-wide modules: no
        runner in this server (a second server on the same database)
    """
    os.makedirs(LOG_DIR, exist_ok=True)
    log_path = os.path.join(LOG_DIR, "%s_%s.log" % (log_name, dbname))
    out = open(log_path, "w")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        # ``-d`` without ``--db-filter``: with a filter every request without a session (all of
        # the job runner's) lists the cluster's databases first (bench/README.md).
        [sys.executable, odoo_bin(), "-c", CONF, "-d", dbname, "--workers=%d" % workers,
         "--max-cron-threads=0", "--http-port=%d" % port, "--http-interface=127.0.0.1",
         "--limit-time-real=900", "--limit-time-cpu=900",
         # Odoo's default level; WAC_BENCH_LOG_LEVEL=warn measures without a line per job.
         "--gevent-port=%d" % (port + 1),
         "--log-level=%s" % os.environ.get("WAC_BENCH_LOG_LEVEL", "info"),
         *([] if jobrunner else ["--load=base,web"])],
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    log("odoo server pid %d on port %d, %d workers (log: %s)" % (proc.pid, port, workers,
                                                                  log_path))
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        out.close()


def wait_for_jobs(registry, channel=None, timeout=600, since_id=0):
    """Wait until no due job of ``channel`` (id > since_id; the send channel by default) is
    left to run.

    :returns: the ``(state, count)`` of those jobs at the end
    """
    from odoo.addons.whatsapp_coexistence.const import CHANNEL_WHATSAPP

    channel = channel or CHANNEL_WHATSAPP
    deadline = time.time() + timeout
    while True:
        with registry.cursor() as cr:
            cr.execute("""
                SELECT state, count(*) FROM queue_job
                 WHERE channel = %s AND id > %s AND (eta IS NULL OR eta <= now() at time zone 'UTC')
                 GROUP BY state""", (channel, since_id))
            states = dict(cr.fetchall())
        busy = sum(n for s, n in states.items() if s in ("pending", "enqueued", "started"))
        if not busy:
            return states
        if time.time() > deadline:
            raise TimeoutError("jobs still running after %ss: %s" % (timeout, states))
        time.sleep(0.25)


