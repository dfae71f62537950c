"""``scripts/demo.sh --check``: assert the demo's story and print its counts (odoo shell)."""

from collections import Counter

failures = []


def check(ok, what):
    print(("  ok    " if ok else "  FAIL  ") + what)
    if not ok:
        failures.append(what)


env = globals()["env"]  # odoo shell provides it
admin = env.ref("base.user_admin")
clinic = env.ref("whatsapp_coexistence.demo_company_clinic")
salon = env.ref("whatsapp_coexistence.demo_company_salon")
print("admin opens on %s; allowed: %s" % (
    admin.company_id.name, ", ".join(admin.company_ids.mapped("name"))))
check(admin.company_id == clinic, "admin opens on the clinic")
check(clinic | salon <= admin.company_ids, "admin is allowed both demo companies")
Message = env["wac.message"]
for account in env["wac.account"].search([("company_id", "in", (clinic | salon).ids)]):
    company = account.company_id
    print("\n%s (%s, %s)" % (company.name, account.automation_mode, account.state))
    salon_account = account == env.ref("whatsapp_coexistence.demo_account_salon")
    result = account.action_test_connection()["params"]
    if salon_account:  # paused by Meta's 190: the test works and offers Resume, not resumes
        check("Resume" in result["message"], "Test connection: %s" % result["message"])
    else:
        check(result["type"] == "success", "Test connection: %s" % result["message"])
    approved = account.template_ids.filtered(lambda t: t.status == "APPROVED")
    mappings = env["wac.template.mapping"].search([("company_id", "=", company.id)])
    check(len(approved) >= 8 and len(mappings) >= 8,
          "%d approved templates, %d mappings" % (len(approved), len(mappings)))
    messages = Message.search([("company_id", "=", company.id)])
    out = Counter(messages.filtered(lambda m: m.direction == "out" and m.source == "api")
                  .mapped("status"))
    sources = Counter(messages.mapped("source"))
    print("  outbound by status: %s" % dict(sorted(out.items())))
    print("  by source: %s" % dict(sorted(sources.items())))
    account.invalidate_recordset()
    open_items = [item.key for item in account._wac_readiness() if not item.ok]
    expected = {"support", "compliance"} | ({"feature_flag"} if salon_account else set())
    check(set(open_items) == expected, "readiness %s, open: %s (the two attestations%s)" % (
        account.readiness_summary, ", ".join(open_items),
        ", and the pause" if salon_account else ""))
    if account == env.ref("whatsapp_coexistence.demo_account_clinic"):
        check(out["dry_run"] >= 6, "%d dry-run messages" % out["dry_run"])
        check(sources["history"] > 0, "history imported (%s, %d messages)" % (
            account.history_state, sources["history"]))
        check(sources["app"] > 0, "%d echo(es) from the Business App" % sources["app"])
        continue
    for status in ("sent", "delivered", "read", "failed"):
        check(out[status] > 0, "%d %s" % (out[status], status))
    failed = messages.filtered(lambda m: m.status == "failed" and m.error_code)
    check(bool(failed), "failed with a Meta error: %s" % ", ".join(
        "%s %s" % (m.error_code, m.error_title or "") for m in failed[:1]))
    Attendee = env["calendar.attendee"]
    events = env["calendar.event"].search([("wa_company_id", "=", company.id)])
    states = Counter(Attendee.search([("event_id", "in", events.ids),
                                      ("partner_id.user_ids", "=", False)]).mapped("state"))
    print("  %d appointments, attendees: %s" % (len(events), dict(states)))
    check(states["accepted"] > 0 and states["declined"] > 0,
          "replies: %d confirmed, %d cancelled" % (states["accepted"], states["declined"]))
    held = messages.filtered(lambda m: m.status == "held")
    check(account.automation_paused and len(held) == 1,
          "paused (%s), %d message held" % ((account.automation_pause_reason or "")[:40],
                                             len(held)))
    check(bool(account.golive_override_reason), "forced go-live recorded: %s" % (
        account.golive_override_reason or "")[:60])
env.cr.rollback()
if failures:
    raise SystemExit("demo check FAILED: %s" % "; ".join(failures))
print("\ndemo check: all good")
