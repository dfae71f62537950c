"""Appointment sends through the real queue_job runner while Meta misbehaves and job workers die
(issue 9): no duplicate at Meta, no message without a final or *uncertain* state.

    python3 bench/chaos_send.py [--sends 1000 | --quick] [--seed 9] [--port 8291]
                                [--kill-every 4] [--two-servers]

* One company with the cap at 20 messages/s, ``--sends`` appointments with one customer each
  (a confirmation each), created at once (planned by one job).
* The fake Graph server, in a process of its own, refuses like Meta beyond 20/s (130429) and
  answers the sends with a seeded mix of faults, each consumed by one request: 429 with
  130429 (throughput), 500/503 (Meta's 1, 2, 131000), a hang past the client's read timeout,
  and "processed, then the connection dropped" (Meta sent it, Odoo never got the answer).
  Its status webhooks (``sent``, ``delivered``) go to Odoo, signed with the App Secret, and
  are retried like Meta's when Odoo does not answer 200.
* Every ``--kill-every`` seconds one worker running a send job (``queue_job.worker_pid``) is
  killed with SIGKILL; Odoo's prefork master starts a new one, and the runner requeues the job
  its lock no longer holds.
* The grace period for a lost answer (``whatsapp_coexistence.uncertain_grace_seconds``) is
  lowered to ``--grace`` (60 s), so that the run drains in minutes.

Reported: sends the fake accepted per send key (``biz_opaque_callback_data``) and the keys
accepted more than once (duplicates), messages by final state, the uncertain ones and why
(what the fake saw of their key), jobs by state, workers killed, time to drain, and the most
messages the fake accepted in any one-second window. ``--two-servers`` adds a second Odoo
(no job runner) on the same database that receives the status webhooks.

Exit status 1 when a duplicate is found, a message is left without a final or *uncertain*
state, or the cap was passed.
"""

import argparse
import collections
import contextlib
import os
import random
import signal
import sys
import threading
import time

from automation_harness import (
    drop_database,
    fresh_database,
    log,
    odoo_registry,
    odoo_server,
)
from bench_automation import FakeGraphProcess, event_vals, setup_tenant
from bench_common import wait_queue_drained

from wa_cloud.ratelimit import max_in_window  # automation_harness put tools/ on sys.path

CAP = 20
#: queue_job's runner requeues a job enqueued more than 10 s ago whose lock is gone.
REQUEUE_AFTER = 10.0
#: Seconds after a killed job can be requeued that the runner is woken (clock steps).
WAKE_MARGIN = 0.5
FAKE_APP_SECRET = "wac-chaos-app-secret"
#: States of a message whose send has not ended: the bench injects no fault that pauses the
#: company (no 190 or 131031), so a *held* message here would wait for a Resume nobody gives.
UNSETTLED = ("attempt still open", "pending", "held", "none")
#: The mix of answers to a send, as weights; "ok" answers normally.
MIX = {"ok": 70, "throughput": 8, "server_error": 8, "timeout": 2, "processed_dropped": 12}
#: What each kind of fault is for the fake server.
FAULTS = {
    "throughput": lambda rng: {"code": 130429},
    "server_error": lambda rng: rng.choice([{"status": 500, "code": 1}, {"status": 503, "code": 2},
                                            {"status": 500, "code": 131000}]),
    # Past the client's 20 s read timeout; nothing is processed.
    "timeout": lambda rng: {"timeout": True, "hang": 22},
    "processed_dropped": lambda rng: {"processed": True, "drop": True},
    "ok": lambda rng: {},
}


def fault_plan(seed, count):
    """``count`` faults for ``POST .../messages``, in a seeded order; each one request.

    :return: the faults, and the kind of each
    """
    rng = random.Random(seed)
    kinds = rng.choices(sorted(MIX), weights=[MIX[k] for k in sorted(MIX)], k=count)
    plan = [{"match": {"method": "POST", "path": "/messages"}, "times": 1, **FAULTS[kind](rng)}
            for kind in kinds]
    return plan, kinds


def setup(db, fake, grace, webhook_url, sends):
    """The tenant, the App Secret the fake signs with, the grace period, then the
    appointments (their confirmations are planned by one job)."""
    odoo, registry = odoo_registry(db)
    from odoo.addons.whatsapp_coexistence.const import PARAM_APP_SECRET, PARAM_UNCERTAIN_GRACE

    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        company, account, organizer, partners = setup_tenant(env, fake.url)
        account.rate_limit_mps = CAP
        params = env["ir.config_parameter"]
        params.set_param(PARAM_APP_SECRET, env["wac.vault"]._encrypt(FAKE_APP_SECRET))
        params.set_param(PARAM_UNCERTAIN_GRACE, str(grace))
        ids = company.id, organizer.id, partners.ids
    fake.configure(webhook_url=webhook_url, throughput_limit=CAP, webhook_retries=6,
                   webhook_retry_delay=1.0)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        company = env["res.company"].browse(ids[0])
        env["calendar.event"].with_company(company).with_context(
            allowed_company_ids=company.ids).create(event_vals(
                env["res.users"].browse(ids[1]), env["res.partner"].browse(ids[2]), sends, 1))
    return registry, ids[0]


class Killer(threading.Thread):
    """Every ``every`` seconds, SIGKILL one worker of ``master_pid`` that runs a send job."""

    def __init__(self, registry, master_pid, every, seed):
        super().__init__(daemon=True)
        self.registry, self.master_pid, self.every = registry, master_pid, every
        self.rng, self.killed, self.stopping = random.Random(seed), [], threading.Event()

    def _children(self):
        import psutil
        with contextlib.suppress(psutil.Error):
            return {p.pid for p in psutil.Process(self.master_pid).children()}
        return set()

    def run(self):
        while not self.stopping.wait(self.every):
            with self.registry.cursor() as cr:
                # Send jobs only: the one planning job, killed whenever it ran (it takes
                # longer than ``every`` on a loaded machine), was requeued until it failed
                # as JobFoundDead, and nothing was sent.
                # Seconds until each job can be requeued, by the database's clock.
                cr.execute("SELECT worker_pid, extract(epoch FROM date_enqueued + interval "
                           "'%s sec' - (now() AT TIME ZONE 'utc')) FROM queue_job "
                           "WHERE state = 'started' AND method_name = '_wac_job_send' "
                           "AND worker_pid IS NOT NULL" % REQUEUE_AFTER)
                requeue_in = dict(cr.fetchall())
            pids = sorted(set(requeue_in) & self._children())
            if pids:
                pid = self.rng.choice(pids)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append((round(time.time(), 1), pid))
                    self._wake_runner_later(float(requeue_in[pid] or 0))

    def _wake_runner_later(self, requeue_in):
        """Wake the runner once the killed job can be requeued (in ``requeue_in`` seconds).

        The runner requeues a dead job (its lock gone, enqueued over 10 s ago) only at the
        top of its loop, which waits for a NOTIFY on ``queue_job`` or 60 s. With every slot
        held by killed jobs nothing notifies, and each kill stalled the run for up to a
        minute: the drain measured queue_job's idle poll, not the sends. The wake-up is a
        NOTIFY with no job's uuid (the runner ignores it); what is checked does not change.
        It comes when the job's 10 s are over, not 11 s after the kill: a job killed while
        it waited out a hang or its pace had used some of them already.
        """
        timer = threading.Timer(max(requeue_in, 0.0) + WAKE_MARGIN, self._notify_runner)
        timer.daemon = True
        timer.start()

    def _notify_runner(self):
        import psycopg2

        # A failed wake-up only leaves the runner to its own 60 s poll.
        with contextlib.suppress(psycopg2.Error), self.registry.cursor() as cr:
            cr.execute("NOTIFY queue_job, 'wac-chaos-wake'")


def outcome(registry, company_id, fake, sends, fault_kinds):
    """What Odoo recorded and what the fake accepted.

    :param fault_kinds: the kind of each injected fault, by the fake's fault id
    """
    with registry.cursor() as cr:
        cr.execute("""
            SELECT CASE WHEN wa_attempt_open THEN 'attempt still open'
                        WHEN wa_uncertain THEN 'uncertain'
                        ELSE coalesce(status, 'none') END, count(*)
              FROM wac_message WHERE company_id = %s AND direction = 'out' GROUP BY 1""",
                   (company_id,))
        states = dict(cr.fetchall())
        cr.execute("SELECT wa_send_key FROM wac_message WHERE company_id = %s AND direction = "
                   "'out' AND wa_uncertain", (company_id,))
        uncertain = [key for (key,) in cr.fetchall()]
        cr.execute("SELECT state, count(*) FROM queue_job GROUP BY 1")
        jobs = dict(cr.fetchall())
        cr.execute("SELECT left(coalesce(exc_name, '') || ' ' || coalesce(exc_message, ''), 100),"
                   " count(*) FROM queue_job WHERE state = 'failed' GROUP BY 1")
        failed = dict(cr.fetchall())
    accepted = collections.Counter(m.get("biz_opaque_callback_data") for m in fake.messages())
    requests = fake.requests(path_contains="/messages")
    seen = collections.defaultdict(list)  # send key -> what the fake did with each request
    for request in requests:
        key = (request.get("json") or {}).get("biz_opaque_callback_data")
        kind = fault_kinds.get(request.get("fault"), "ok")
        seen[key].append(kind if kind != "ok" else "ok %s" % request["status"])
    times = sorted(m["time"] for m in fake.messages())
    return {
        "messages": states, "messages_total": sum(states.values()), "appointments": sends,
        "accepted_keys": len(accepted), "accepted_sends": sum(accepted.values()),
        "duplicates": {k: n for k, n in accepted.items() if n > 1},
        "uncertain": len(uncertain),
        "uncertain_why": dict(collections.Counter(
            " / ".join(seen.get(key, ["no request"])) for key in uncertain)),
        "jobs": jobs, "failed_jobs": failed, "requests": len(requests),
        "max_accepted_in_any_1s": max_in_window(times) if times else 0,
    }


def run(args):
    db = "wac_bench_chaos"
    fresh_database(db)
    fake = FakeGraphProcess(app_secret=FAKE_APP_SECRET)
    ports = (args.port, args.port + 2)
    hook_port = ports[1] if args.two_servers else ports[0]
    try:
        registry, company_id = setup(db, fake, args.grace, "http://127.0.0.1:%d"
                                     "/whatsapp_coexistence/webhook" % hook_port, args.sends)
        plan, kinds = fault_plan(args.seed, int(args.sends * 1.5))
        fault_kinds = dict(zip(fake.add_faults(plan)["ids"], kinds))
        mix = collections.Counter(kinds)
        log("chaos: %d sends, faults %s" % (args.sends, dict(mix)))
        with contextlib.ExitStack() as stack:
            master = stack.enter_context(odoo_server(db, ports[0], workers=2, log_name="chaos"))
            if args.two_servers:
                stack.enter_context(odoo_server(db, ports[1], workers=2, log_name="chaos2",
                                                jobrunner=False))
            started = time.monotonic()
            killer = Killer(registry, master.pid, args.kill_every, args.seed)
            killer.start()
            try:
                _waited, drained = wait_queue_drained(db, args.timeout)
            finally:
                killer.stopping.set()
                killer.join()
        report = outcome(registry, company_id, fake, args.sends, fault_kinds)
        report.update(drain_s=time.monotonic() - started, drained=drained,
                      workers_killed=len(killer.killed), faults_planned=dict(mix),
                      two_servers=args.two_servers)
        return report
    finally:
        fake.stop()
        if not args.keep:
            drop_database(db)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="150 sends, 15 minutes at most")
    parser.add_argument("--seed", default="9")
    parser.add_argument("--port", type=int, default=int(os.environ.get("WAC_BENCH_PORT", "8291")))
    parser.add_argument("--kill-every", type=float, default=4.0)
    parser.add_argument("--grace", type=int, default=60)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--two-servers", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)
    if args.quick:
        args.sends, args.timeout = min(args.sends, 150), min(args.timeout, 900.0)
    report = run(args)
    for key, value in report.items():
        print("%s: %s" % (key, value))
    problems = [name for name, bad in (
        ("duplicates at the fake", report["duplicates"]),
        ("messages without a final or uncertain state",
         any(report["messages"].get(state) for state in UNSETTLED)
         or report["messages_total"] < report["appointments"]),
        ("the queue did not drain", not report["drained"]),
        ("more than %d accepted in one second" % CAP, report["max_accepted_in_any_1s"] > CAP),
    ) if bad]
    print("targets: %s" % ("met" if not problems else "MISSED: " + "; ".join(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
