"""Benchmark of the operator console (issue 12): does the overview stay fast with many rows?

Data: 20 companies, each with its WhatsApp account, and 100,000 messages (one outbound in
five is inbound) spread over the last 30 days, in every status, plus 2,000 webhook events;
rows are inserted with SQL (``generate_series``), then ``ANALYZE``.

Measured in this process, on the server side of each call (what the web client's RPC runs),
as two WhatsApp managers: one of a single company, one of all 20 companies:

* baseline: the plain message list (``web_search_read`` of the list view's fields, 80 rows and
  the count, as the list view asks);
* the overview: ``web_search_read`` of the kanban's fields for every visible account (each
  card's figures: grouped counts over 24 h and 7 days, uncertain, jobs, alerts, last webhook);
* the message graph: ``read_group`` by day and status over the last 7 days (outbound);
* the message pivot: the four ``read_group`` calls a pivot with day rows and status columns
  makes (total, rows, columns, cells) over 30 days.

Each call runs in its own transaction with an empty cache; ``--rounds`` alternating rounds
(7 by default, 3 with ``--quick``), medians reported with the ratio to the list. Target: each
under 1 s. The database is dropped afterwards unless ``--keep``.

Run: ``WAC_RUN_DIR=.run/console python3 bench/bench_console.py [--quick] [--keep]``.
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime

from automation_harness import drop_database, fresh_database, log, odoo_registry

DB = "bench_console"
COMPANIES = 20
MESSAGES = 100_000
EVENTS = 2_000
STATUSES = ["sent", "delivered", "read", "read", "delivered", "failed", "dry_run", "accepted"]


def build(registry):
    """Companies, accounts, managers, then the rows in SQL. Returns the two users' ids."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        brazil = env.ref("base.br")
        companies = env["res.company"].create([
            {"name": "Bench company %02d" % i, "country_id": brazil.id}
            for i in range(COMPANIES)])
        env["wac.account"].create([
            {"company_id": company.id, "waba_id": "9%014d" % i,
             "phone_number_id": "8%014d" % i, "display_phone_number": "+55 11 9%04d-0000" % i,
             "state": "connected"} for i, company in enumerate(companies)])
        groups = [env.ref("base.group_user").id,
                  env.ref("whatsapp_coexistence.whatsapp_coexistence_group_manager").id]
        one = env["res.users"].create({
            "name": "Manager of one", "login": "bench_one", "company_id": companies[0].id,
            "company_ids": [(6, 0, companies[:1].ids)], "groups_id": [(6, 0, groups)]})
        every = env["res.users"].create({
            "name": "Manager of all", "login": "bench_all", "company_id": companies[0].id,
            "company_ids": [(6, 0, companies.ids)], "groups_id": [(6, 0, groups)]})
        insert_rows(cr, companies.ids, env["wac.account"].search(
            [("company_id", "in", companies.ids)]).mapped(lambda a: (a.company_id.id, a.id)))
        return one.id, every.id, companies.ids


def insert_rows(cr, company_ids, accounts):
    account_of = dict(accounts)
    cr.execute("""
        INSERT INTO wac_message (company_id, account_id, wamid, direction, source, status,
                                 message_at, body, create_uid, write_uid, create_date, write_date)
        SELECT c.company_id, c.account_id, 'wamid.bench' || g,
               CASE WHEN g %% 5 = 0 THEN 'in' ELSE 'out' END,
               CASE WHEN g %% 5 = 0 THEN 'customer' ELSE 'api' END,
               CASE WHEN g %% 5 = 0 THEN 'received' ELSE (%s::varchar[])[1 + g %% %s] END,
               now() at time zone 'utc' - (g %% 43200) * interval '1 minute', 'Lembrete',
               1, 1, now() at time zone 'utc', now() at time zone 'utc'
          FROM generate_series(1, %s) g
          JOIN (SELECT row_number() OVER () - 1 AS n, company_id, account_id
                  FROM unnest(%s::int[], %s::int[]) AS t(company_id, account_id)) c
            ON c.n = g %% %s
    """, (
        STATUSES, len(STATUSES), MESSAGES, list(company_ids),
        [account_of[c] for c in company_ids], len(company_ids)))
    cr.execute("""
        INSERT INTO wac_webhook_delivery (body, body_sha256, received_at, state, create_uid,
                                          write_uid, create_date, write_date)
        SELECT '{}', 'bench' || g, now() at time zone 'utc' - g * interval '1 minute', 'done',
               1, 1, now() at time zone 'utc', now() at time zone 'utc'
          FROM generate_series(1, %s) g
        RETURNING id, received_at
    """, (EVENTS,))
    deliveries = cr.fetchall()
    cr.execute("""
        INSERT INTO wac_webhook_event (delivery_id, received_at, company_id, account_id, field,
                                       state, change_index, create_uid, write_uid, create_date,
                                       write_date)
        SELECT d.id, d.received_at, (%s::int[])[1 + d.id %% %s], (%s::int[])[1 + d.id %% %s],
               'messages', 'done', 0, 1, 1, now() at time zone 'utc', now() at time zone 'utc'
          FROM unnest(%s::int[], %s::timestamp[]) AS d(id, received_at)
    """, (list(company_ids), len(company_ids), [account_of[c] for c in company_ids],
          len(company_ids), [d[0] for d in deliveries], [d[1] for d in deliveries]))
    cr.execute("ANALYZE wac_message; ANALYZE wac_webhook_event; ANALYZE wac_account")


def calls(env, companies):
    """The server side of each page, for the user of ``env``."""
    from datetime import timedelta

    from odoo import fields

    Message = env["wac.message"]
    Account = env["wac.account"]
    list_spec = {name: {} for name in ("message_at", "direction", "source", "message_type",
                                       "body", "status")}
    list_spec["contact_id"] = {"fields": {"display_name": {}}}
    list_spec["company_id"] = {"fields": {"display_name": {}}}
    card = {name: {} for name in Account._fields if name.startswith("ov_")}
    card.update({name: {} for name in ("state", "quality_rating", "automation_mode",
                                       "automation_paused", "readiness_count",
                                       "display_phone_number")})
    card["company_id"] = {"fields": {"display_name": {}}}
    now = fields.Datetime.now()
    week = [("direction", "=", "out"), ("message_at", ">=", now - timedelta(days=7))]
    month = [("message_at", ">=", now - timedelta(days=30))]

    def pivot():
        for groupby in ([], ["message_at:day"], ["status"], ["message_at:day", "status"]):
            Message.read_group(month, ["__count"], groupby, lazy=False)

    return {
        "list": lambda: Message.web_search_read([], list_spec, limit=80, count_limit=10001),
        "overview": lambda: Account.web_search_read([], card, limit=40),
        "graph": lambda: Message.read_group(week, ["__count"], ["message_at:day", "status"],
                                            lazy=False),
        "pivot": pivot,
    }


def measure(registry, uid, companies, rounds):
    from odoo import api

    timings = {}
    for round_ in range(rounds):
        names = ["list", "overview", "graph", "pivot"]
        if round_ % 2:
            names.reverse()
        for name in names:
            with registry.cursor() as cr:
                env = api.Environment(cr, uid, {"allowed_company_ids": companies})
                call = calls(env, companies)[name]
                env.invalidate_all()
                start = time.perf_counter()
                call()
                timings.setdefault(name, []).append(time.perf_counter() - start)
                cr.rollback()
    return {name: statistics.median(values) for name, values in timings.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--rounds", type=int)
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    fresh_database(DB)
    try:
        _odoo, registry = odoo_registry(DB)
        log("inserting %d companies, %d messages, %d webhook events" % (
            COMPANIES, MESSAGES, EVENTS))
        one, every, companies = build(registry)
        results = {}
        for label, uid, allowed in (("manager of 1 company", one, companies[:1]),
                                    ("manager of 20 companies", every, companies)):
            log("measuring as the %s (%d rounds)" % (label, rounds))
            results[label] = measure(registry, uid, allowed, rounds)
    finally:
        if not args.keep:
            drop_database(DB)
    print("\n| user | page | median (s) | / list | < 1 s |\n|---|---|---|---|---|")
    for label, medians in results.items():
        for name in ("list", "overview", "graph", "pivot"):
            print("| %s | %s | %.3f | %.2f | %s |" % (
                label, name, medians[name], medians[name] / medians["list"],
                "yes" if medians[name] < 1 else "NO"))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "console-%s.json" % datetime.now().strftime("%Y%m%d-%H%M%S"))
    with open(path, "w") as handle:
        json.dump({"rounds": rounds, "messages": MESSAGES, "companies": COMPANIES,
                   "medians_s": results}, handle, indent=2)
    log("raw figures: %s" % path)
    return 0 if all(v < 1 for medians in results.values() for v in medians.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
