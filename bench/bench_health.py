"""Health check benchmark (issue 11): the hourly health cron for 200 connected companies
against the fake Graph server, and the alert evaluation cron over the same companies.

    python3 bench/bench_health.py [--quick] [--companies N] [--port 8787]

1. A fresh database (``bench_g_health``) gets N companies (200; 40 with ``--quick``), each with
   a connected account, a System User token and its own WABA and number in the fake Graph
   server (``tools/fake_graph``, its own thread, 127.0.0.1), our app subscribed to each WABA.
2. **Baseline**: the same three Graph calls per company (number health, subscribed apps,
   ``debug_token``) made by the pure client (``tools/wa_cloud``), without Odoo.
3. **Health cron**: ``wac.account._wac_cron_health_check()`` in this process, as the cron
   runs it, then a check that every account recorded a healthy answer. Reported: seconds,
   requests per company (the largest and the mean) and the ratio to the baseline.
4. **Alert evaluation**: ``_wac_cron_evaluate_alerts()`` over the N accounts, twice (the
   second run finds every alert already in place).

Targets (issue 11): the health cron under 60 s and at most 4 requests per company. The exit
status is non-zero when a target is missed or an account is not healthy. Progress goes to
stderr, the report to stdout. Nothing is committed to the database: it is dropped at the end.
"""

import argparse
import collections
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_common import log, run_dir  # noqa: E402

run_dir("bench-health")  # before the harness reads WAC_RUN_DIR
import automation_harness as harness  # noqa: E402

from fake_graph import FakeGraphServer  # noqa: E402  (tools/ is on sys.path via the harness)
from wa_cloud.client import GraphClient  # noqa: E402

DBNAME = "bench_g_health"
TARGET_SECONDS = 60.0
TARGET_REQUESTS = 4
APP_ID, APP_SECRET = "1234567890", "bench-app-secret"


def company_ids(index):
    """Numeric Graph ids and a token of company ``index`` (distinct for every company)."""
    return {"waba_id": "30%013d" % index, "phone_number_id": "40%013d" % index,
            "display_phone_number": "+55 11 9%04d-%04d" % (index // 10000, index % 10000),
            "token": "EAAGbenchhealth%020d" % index}


def seed(count):
    wabas, tokens = [], []
    for index in range(count):
        ids = company_ids(index)
        wabas.append({"id": ids["waba_id"], "name": "Company %d" % index,
                      "subscription": {"override_callback_uri": None, "verify_token": None,
                                       "time": 0},
                      "phone_numbers": [{"id": ids["phone_number_id"],
                                         "display_phone_number": ids["display_phone_number"],
                                         "verified_name": "Company %d" % index,
                                         "is_on_biz_app": True, "quality_rating": "GREEN"}]})
        tokens.append({"token": ids["token"], "waba_ids": [ids["waba_id"]]})
    return {"app": {"app_id": APP_ID, "app_secret": APP_SECRET, "name": "Bench App"},
            "wabas": wabas, "tokens": tokens, "codes": []}


def baseline(fake, count):
    """The three health calls per company with the pure client: the floor of the cron."""
    started = time.perf_counter()
    for index in range(count):
        ids = company_ids(index)
        client = GraphClient(ids["token"], base_url=fake.url, app_id=APP_ID,
                             app_secret=APP_SECRET, timeout=20)
        client.get_phone_health(ids["phone_number_id"])
        client.is_app_subscribed(ids["waba_id"], APP_ID)
        client.debug_token()
    return time.perf_counter() - started


def setup_accounts(env, fake, count):
    from odoo.addons.whatsapp_coexistence.const import (
        PARAM_APP_ID,
        PARAM_APP_SECRET,
        PARAM_GRAPH_BASE_URL,
    )
    params = env["ir.config_parameter"].sudo()
    params.set_param(PARAM_GRAPH_BASE_URL, fake.url)
    params.set_param(PARAM_APP_ID, APP_ID)
    params.set_param(PARAM_APP_SECRET, env["wac.vault"]._encrypt(APP_SECRET))
    companies = env["res.company"].create([{"name": "Bench %d" % i} for i in range(count)])
    accounts = env["wac.account"].create([
        dict({k: v for k, v in company_ids(i).items() if k != "token"}, company_id=company.id)
        for i, company in enumerate(companies)])
    for index, account in enumerate(accounts):
        account._wac_set_token(company_ids(index)["token"])
    accounts.write({"state": "connected"})
    env.flush_all()
    return accounts


def requests_per_company(fake, count):
    per = collections.Counter()
    for record in fake.requests():
        path = record["path"]
        for index in range(count):
            ids = company_ids(index)
            if (ids["phone_number_id"] in path or ids["waba_id"] in path
                    or record["query"].get("input_token") == ids["token"]):
                per[index] += 1
                break
        else:
            per["other"] += 1
    return per


def unhealthy(accounts):
    return accounts.filtered(lambda a: not (
        a.health_phone_status == "CONNECTED" and a.health_app_subscribed == "yes"
        and a.health_token_valid == "yes" and not a.health_error and a.state == "connected"))


def run(count, port):
    harness.fresh_database(DBNAME)
    fake = FakeGraphServer(port=port, seed=seed(count), status_delay=0)
    fake.start()
    try:
        odoo, registry = harness.odoo_registry(DBNAME)
        base = baseline(fake, count)
        fake.clear_requests()
        with registry.cursor() as cr:
            env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
            accounts = setup_accounts(env, fake, count)
            log("%d accounts ready; health cron..." % count)
            started = time.perf_counter()
            env["wac.account"]._wac_cron_health_check()
            env.flush_all()
            cron = time.perf_counter() - started
            per = requests_per_company(fake, count)
            sick = unhealthy(accounts)
            evaluations = []
            for _round in range(2):
                started = time.perf_counter()
                env["wac.account"]._wac_cron_evaluate_alerts()
                env.flush_all()
                evaluations.append(time.perf_counter() - started)
            alerts = env["wac.alert"].search_count([("account_id", "in", accounts.ids)])
            cr.rollback()
    finally:
        fake.stop()
        harness.drop_database(DBNAME)
    return {"base": base, "cron": cron, "per": per, "sick": len(sick), "alerts": alerts,
            "evaluations": evaluations}


def report(count, figures):
    per = figures["per"]
    counts = [per[i] for i in range(count)]
    worst, mean = max(counts), sum(counts) / count
    lines = [
        "bench_health: %d connected companies, fake Graph on 127.0.0.1" % count,
        "  baseline (pure client, 3 calls per company): %.2f s" % figures["base"],
        "  health cron: %.2f s (target < %.0f s), ratio to baseline %.2f"
        % (figures["cron"], TARGET_SECONDS, figures["cron"] / figures["base"]),
        "  requests per company: max %d, mean %.2f (target <= %d); others %d"
        % (worst, mean, TARGET_REQUESTS, per["other"]),
        "  accounts not recorded healthy: %d; alerts raised: %d"
        % (figures["sick"], figures["alerts"]),
        "  alert evaluation cron: %.2f s first run, %.2f s second run"
        % tuple(figures["evaluations"]),
    ]
    ok = (figures["cron"] < TARGET_SECONDS and worst <= TARGET_REQUESTS and not figures["sick"]
          and not figures["alerts"])
    lines.append("  result: %s" % ("OK" if ok else "TARGET MISSED"))
    return "\n".join(lines), ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 companies")
    parser.add_argument("--companies", type=int, default=None)
    parser.add_argument("--port", type=int, default=8787, help="fake Graph server port")
    args = parser.parse_args(argv)
    count = args.companies or (40 if args.quick else 200)
    text, ok = report(count, run(count, args.port))
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
