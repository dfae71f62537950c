"""What the benchmark harnesses share: where things are, the PostgreSQL cluster, progress
lines, and the script that starts an Odoo server. Nothing here is measured."""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ODOO_SH = os.path.join(REPO, "scripts", "odoo.sh")
PG_SH = os.path.join(REPO, "scripts", "pg.sh")
PG = {"host": os.environ.get("PGHOST", "127.0.0.1"),
      "port": int(os.environ.get("WAC_PGPORT", os.environ.get("PGPORT", "55432"))),
      "user": os.environ.get("PGUSER", "odoo")}


def run_dir(default_name):
    """``$WAC_RUN_DIR`` (``scripts/odoo.sh`` writes its config there), set to
    ``.run/<default_name>`` when unset."""
    return os.environ.setdefault("WAC_RUN_DIR", os.path.join(REPO, ".run", default_name))


def log(message):
    """Progress goes to stderr so that stdout holds the report only."""
    sys.stderr.write("[bench] %s\n" % message)
    sys.stderr.flush()


def odoo_bin():
    """Odoo's own launcher script, next to the importable ``odoo`` package.

    The servers are started with it rather than with ``scripts/odoo.sh`` (``python3 -m odoo``):
    with ``--workers`` the prefork master respawns its gevent worker as ``sys.executable
    sys.argv[0] gevent``, and under ``-m odoo`` that ``argv[0]`` is ``odoo/__main__.py``, which
    cannot run as a script. The master then respawns a dying interpreter at every wake-up,
    thousands of times a minute, which eats a core and makes any measurement meaningless. The
    config file is still the one ``scripts/odoo.sh`` generates.
    """
    import odoo
    path = os.path.join(os.path.dirname(os.path.dirname(odoo.__file__)), "odoo-bin")
    if not os.path.isfile(path):
        raise RuntimeError("odoo-bin not found next to %s" % odoo.__file__)
    return path


def wait_queue_drained(dbname, timeout, poll=2.0):
    """Wait until no queue_job row of ``dbname`` is pending, queued or running (retries due
    later included).

    :return: ``(seconds waited, whether the queue drained)``
    """
    import psycopg2

    started = time.monotonic()
    conn = psycopg2.connect(dbname=dbname, **PG)
    conn.autocommit = True
    try:
        with conn.cursor() as cr:
            while time.monotonic() - started < timeout:
                cr.execute("SELECT count(*) FROM queue_job WHERE state IN "
                           "('pending', 'enqueued', 'started', 'wait_dependencies')")
                if not cr.fetchone()[0]:
                    return time.monotonic() - started, True
                time.sleep(poll)
    finally:
        conn.close()
    return time.monotonic() - started, False
