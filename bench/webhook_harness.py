"""Process and database plumbing for ``bench_webhook.py``: nothing here is measured.

* one installed *template* database, created once and upgraded only when the addon's files
  change, cloned into a fresh database for every benchmark (each run starts from the same
  state, and re-runs never deduplicate against the previous run's wamids);
* an Odoo server started with ``scripts/odoo.sh`` in its own session, stopped by its process
  group id on exit, error or Ctrl-C;
* ``odoo shell`` scripts whose last ``BENCH_JSON`` line is the result.

Everything listens on 127.0.0.1 only.
"""

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import psycopg2
from bench_common import HERE, ODOO_SH, PG, PG_SH, REPO, log, odoo_bin, run_dir

RUN_DIR = run_dir("bench")
BASE_CONF = os.path.join(RUN_DIR, "odoo.conf")
LOG_DIR = os.path.join(RUN_DIR, "logs")
RESULTS_DIR = os.path.join(HERE, "results")

# What is measured: the checkout's addon, or another copy of it (``use_source``).
SOURCE = {"root": REPO, "conf": BASE_CONF, "template": "wac_bench_template"}
FINGERPRINT_PARAM = "wac_bench.addon_fingerprint"
# The benchmark tenant: the ids of Meta's examples (tests/payloads.py).
APP_SECRET = "wac-bench-app-secret"
WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_PHONE_NUMBER = "+55 11 98765-4321"
BENCH_JSON = "BENCH_JSON "

SETUP_SCRIPT = f"""
from odoo.addons.whatsapp_coexistence.const import PARAM_APP_SECRET
params = env["ir.config_parameter"].sudo()
params.set_param(PARAM_APP_SECRET, env["wac.vault"]._encrypt({APP_SECRET!r}))
if not env["wac.account"].sudo().search([("phone_number_id", "=", {PHONE_NUMBER_ID!r})]):
    company = env["res.company"].create({{"name": "Bench Clinic",
                                         "country_id": env.ref("base.br").id}})
    env["wac.account"].sudo().create({{
        "company_id": company.id, "waba_id": {WABA_ID!r},
        "phone_number_id": {PHONE_NUMBER_ID!r},
        "display_phone_number": {DISPLAY_PHONE_NUMBER!r}, "state": "connected"}})
env.cr.commit()
"""


def sigterm_as_interrupt():
    """Make SIGTERM unwind like Ctrl-C, so every ``finally`` stops what it started."""
    def handler(signum, frame):
        raise KeyboardInterrupt("SIGTERM")
    signal.signal(signal.SIGTERM, handler)


# ------------------------------------------------------------
# DATABASES
# ------------------------------------------------------------

def pg_start():
    subprocess.run([PG_SH, "start"], check=True)


@contextlib.contextmanager
def connect(dbname, autocommit=False):
    conn = psycopg2.connect(dbname=dbname, **PG)
    conn.autocommit = autocommit
    try:
        yield conn
    finally:
        conn.close()


def query(dbname, sql, params=None):
    with connect(dbname, autocommit=True) as conn, conn.cursor() as cr:
        cr.execute(sql, params)
        return cr.fetchall() if cr.description else None


def db_exists(name):
    return bool(query("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (name,)))


def drop_db(name):
    assert name.startswith("wac_bench_"), name
    query("postgres", 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    shutil.rmtree(os.path.join(RUN_DIR, "data", "filestore", name), ignore_errors=True)


def addon_fingerprint():
    """Hash of the addon's files (tests excluded): a change means the template needs ``-u``."""
    addon = os.path.join(SOURCE["root"], "whatsapp_coexistence")
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(addon):
        dirs[:] = sorted(d for d in dirs if d not in ("tests", "__pycache__"))
        for name in sorted(files):
            if name.endswith(".pyc"):
                continue
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, addon).encode())
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def _template_state():
    if not db_exists(SOURCE["template"]):
        return None
    try:
        rows = query(SOURCE["template"], """
            SELECT (SELECT state FROM ir_module_module WHERE name = 'whatsapp_coexistence'),
                   (SELECT value FROM ir_config_parameter WHERE key = %s)""",
                     (FINGERPRINT_PARAM,))
    except psycopg2.Error:
        return None
    return rows[0]


def ensure_template():
    """Create (once) or upgrade the installed template database; return its name."""
    os.makedirs(LOG_DIR, exist_ok=True)
    fingerprint = addon_fingerprint()
    state = _template_state()
    if state and state[0] == "installed" and state[1] == fingerprint:
        return SOURCE["template"]
    logfile = os.path.join(LOG_DIR, "template.log")
    if state and state[0] == "installed":
        log("addon changed since the template was built: upgrading %s" % SOURCE["template"])
        action = ["-u", "whatsapp_coexistence"]
    else:
        log("building %s (install without demo data, once)" % SOURCE["template"])
        drop_db(SOURCE["template"])
        action = ["-i", "whatsapp_coexistence", "--without-demo=all"]
    with open(logfile, "w") as out:
        subprocess.run(odoo_cmd("-d", SOURCE["template"], *action, "--stop-after-init",
                                "--no-http", "--log-level=warn"),
                       check=True, stdout=out, stderr=subprocess.STDOUT)
    odoo_shell(SOURCE["template"], SETUP_SCRIPT, "template_setup")
    query(SOURCE["template"], """
        INSERT INTO ir_config_parameter (key, value, create_date, write_date)
        VALUES (%s, %s, now(), now())
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""", (FINGERPRINT_PARAM, fingerprint))
    return SOURCE["template"]


def clone_db(name):
    """A fresh copy of the template (and its filestore) named ``name``."""
    template = ensure_template()
    drop_db(name)
    query("postgres", 'CREATE DATABASE "%s" TEMPLATE "%s"' % (name, template))
    store = os.path.join(RUN_DIR, "data", "filestore")
    if os.path.isdir(os.path.join(store, template)):
        shutil.copytree(os.path.join(store, template), os.path.join(store, name))
    return name


# ------------------------------------------------------------
# ODOO PROCESSES
# ------------------------------------------------------------

def ensure_config():
    """Let ``scripts/odoo.sh`` write its config (once) under ``$WAC_RUN_DIR``; with another
    source, derive a config whose addons path points there instead of the checkout."""
    if not os.path.isfile(BASE_CONF):
        subprocess.run([ODOO_SH, "--version"], check=True, stdout=subprocess.DEVNULL)
    if SOURCE["conf"] != BASE_CONF:
        with open(BASE_CONF) as handle:
            text = handle.read()
        paths = next(line for line in text.splitlines() if line.startswith("addons_path"))
        entries = [SOURCE["root"] if os.path.abspath(p.strip()) == REPO else p.strip()
                   for p in paths.split("=", 1)[1].split(",")]
        with open(SOURCE["conf"], "w") as handle:
            handle.write(text.replace(paths, "addons_path = " + ",".join(entries)))
        os.chmod(SOURCE["conf"], 0o600)
    return SOURCE["conf"]


def config_channels():
    """The ``[queue_job] channels`` of the generated config."""
    import configparser
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ensure_config())
    return parser.get("queue_job", "channels", fallback="root:1")


def use_source(root):
    """Measure the addon found in ``root`` (e.g. ``git archive HEAD | tar -x -C root``)."""
    root = os.path.abspath(root)
    if not os.path.isfile(os.path.join(root, "whatsapp_coexistence", "__manifest__.py")):
        raise SystemExit("%s holds no whatsapp_coexistence addon" % root)
    tag = hashlib.sha256(root.encode()).hexdigest()[:8]
    SOURCE.update(root=root, conf=os.path.join(RUN_DIR, "odoo-%s.conf" % tag),
                  template="wac_bench_template_%s" % tag)


def odoo_cmd(*args, command=None):
    """``odoo-bin [command] -c <config> args``, against this checkout's PostgreSQL (started
    if needed)."""
    pg_start()
    return [sys.executable, odoo_bin(), *([command] if command else []), "-c", ensure_config(),
            *args]


def odoo_shell(dbname, script, label, env=None):
    """Run ``script`` in ``odoo shell`` and return the JSON of its last ``BENCH_JSON`` line."""
    os.makedirs(LOG_DIR, exist_ok=True)
    logfile = os.path.join(LOG_DIR, "%s.log" % label)
    with open(logfile, "w") as err:
        proc = subprocess.run(
            odoo_cmd("-d", dbname, "--no-http", "--log-level=warn", command="shell"),
            input=script, text=True, stdout=subprocess.PIPE, stderr=err,
            env=dict(os.environ, **(env or {})), check=False)
    results = [line[len(BENCH_JSON):] for line in proc.stdout.splitlines()
               if line.startswith(BENCH_JSON)]
    with open(logfile) as handle:
        traceback = "Traceback" in handle.read()
    if proc.returncode or traceback:
        raise RuntimeError("odoo shell %s failed (exit %s); see %s\n%s" % (
            label, proc.returncode, logfile, proc.stdout[-2000:]))
    return json.loads(results[-1]) if results else None


class OdooServer:
    """``scripts/odoo.sh`` with prefork workers on 127.0.0.1:``port``, as a context manager.

    :param bool jobrunner: keep queue_job's runner (a server-wide module of the generated
        config); without it jobs are still enqueued, only nobody runs them.
    """

    def __init__(self, dbname, port, label, workers=2, jobrunner=False, channels=None, extra=(),
                 gevent_port=None):
        self.dbname, self.port, self.label = dbname, port, label
        # ``-d`` without ``--db-filter`` pins the database: Odoo then skips listing the cluster's
        # databases (a new connection to ``postgres``) on every request without a session.
        self.args = odoo_cmd("-d", dbname, "--workers=%d" % workers, "--max-cron-threads=0",
                     "--http-interface=127.0.0.1", "--http-port=%d" % port,
                     "--gevent-port=%d" % (gevent_port or port + 1000), "--log-level=warn",
                     *extra)
        if jobrunner:
            self.args.append("--log-handler=odoo.addons.queue_job.jobrunner.runner:INFO")
        else:
            self.args.append("--load=base,web")
        self.jobrunner = jobrunner
        # queue_job reads ODOO_QUEUE_JOB_CHANNELS before the config file's [queue_job] channels.
        self.env = dict(os.environ, **({"ODOO_QUEUE_JOB_CHANNELS": channels} if channels else {}))
        self.logfile = os.path.join(LOG_DIR, "%s.log" % label)
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def __enter__(self):
        os.makedirs(LOG_DIR, exist_ok=True)
        self._out = open(self.logfile, "w")
        # A session of its own: stopping it never reaches anything this script did not start.
        self.proc = subprocess.Popen(self.args, stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env,
                                     start_new_session=True)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def wait_ready(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("Odoo exited with %s; see %s" % (self.proc.returncode,
                                                                     self.logfile))
            try:
                with urllib.request.urlopen(self.url + "/web/health", timeout=2) as reply:
                    if reply.status == 200 and (not self.jobrunner or self._runner_listening()):
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("Odoo not ready after %ss; see %s" % (timeout, self.logfile))

    def _runner_listening(self):
        """queue_job's runner starts 5 s after the workers and says when it listens."""
        self._out.flush()
        with open(self.logfile, errors="replace") as handle:
            return ("queue job runner ready for db %s" % self.dbname) in handle.read()

    def pids(self):
        """The master and its workers, gevent and job runner processes."""
        import psutil
        try:
            master = psutil.Process(self.proc.pid)
            return [master, *master.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # session leader: its pid is the group id
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)  # the master stops its workers
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        # Workers left behind by an unclean shutdown belong to the same group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._out.close()


def save_result(name, data):
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, "%s-%s.json" % (name, time.strftime("%Y%m%d-%H%M%S")))
    with open(path, "w") as handle:
        json.dump(data, handle, indent=1)
    return path
