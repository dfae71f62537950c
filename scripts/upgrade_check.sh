#!/usr/bin/env bash
# Upgrade proof: a database made by the last 18.0.1.1.0 commit upgrades to this checkout.
#   scripts/upgrade_check.sh        (make test runs it as a block of its own)
# 1. The base commit (WAC_UPGRADE_BASE, default cd5dd58) is checked out into .run/upgrade/base
#    (git worktree, never committed) and installed, with its demo companies and their
#    encrypted sandbox tokens, in a fresh database.
# 2. Against the fake Graph server and a running Odoo of that commit: inbound messages, an app
#    echo and an address-book change through the signed webhook, a sent message and its status
#    webhooks, the template sync; then, with Odoo stopped, an appointment whose send job stays
#    queued. The row counts are written down.
# 3. `-u whatsapp_coexistence` with this checkout: the log must hold no WARNING nor ERROR, every
#    count must be the same, Test connection must succeed for both companies (the tokens still
#    decrypt), the webhook must answer 200, and the queued send job must run.
# Ports: WAC_PGPORT (PostgreSQL), WAC_TEST_HTTP_PORT (Odoo), a free one for the fake Graph.
# Exit status 0 when the upgrade holds, or when the base commit is not in this git history
# (then a SKIPPED banner says so).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
base_commit=${WAC_UPGRADE_BASE:-cd5dd58}
if ! git cat-file -e "$base_commit^{commit}" 2>/dev/null; then
    cat <<BANNER
##########################################################################################
#  SKIPPED: THE UPGRADE CHECK DID NOT RUN. The base commit $base_commit is not in this git
#  history (a shallow clone, or an export without .git).
##########################################################################################
BANNER
    exit 0
fi

run=$here/.run/upgrade
base=$run/base
db=${WAC_UPGRADE_DB:-wac_upgrade_check}
http_port=${WAC_TEST_HTTP_PORT:-8069}
pg_port=${WAC_PGPORT:-55432}
mkdir -p "$run"
rm -f "$run"/*.log "$run"/counts_*.json
if [ ! -d "$base/.git" ] && [ ! -f "$base/.git" ]; then
    git worktree add --detach --force "$base" "$base_commit" >/dev/null 2>&1
fi
git -C "$base" checkout --quiet --detach "$base_commit"

pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap cleanup EXIT INT TERM

scripts/pg.sh start
dropdb -h 127.0.0.1 -p "$pg_port" -U odoo --if-exists "$db"

# One key and one data dir for both versions: the upgraded code must decrypt what the old one
# encrypted, with the key of the same installation.
key=$(python3 -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")
write_conf() {  # write_conf CONF ADDONS_ROOT
    python3 - "$1" "$2" "$run" "$pg_port" "$key" <<'PY'
import os
import sys

import odoo

conf, root, run, pg_port, key = sys.argv[1:]
package = os.path.dirname(odoo.__file__)
paths = [os.path.join(package, "addons"), os.path.join(package, "..", "addons"), root]
with open(conf, "w") as handle:
    handle.write(f"""[options]
addons_path = {",".join(os.path.abspath(p) for p in paths if os.path.isdir(p))}
data_dir = {run}/data
db_host = 127.0.0.1
db_port = {pg_port}
db_user = odoo
db_password = False
list_db = True
server_wide_modules = base,web,queue_job
wa_coexistence_keys = {key}

[queue_job]
channels = root:2,root.whatsapp:2,root.whatsapp.history:1
""")
PY
}
write_conf "$run/base.conf" "$base"
write_conf "$run/new.conf" "$here"
odoo_base() { python3 scripts/odoo-run.py "$@" -c "$run/base.conf"; }
odoo_new() { python3 scripts/odoo-run.py "$@" -c "$run/new.conf"; }
shell_base() { python3 scripts/odoo-run.py shell -c "$run/base.conf" -d "$db" --no-http --log-level=warn; }
shell_new() { python3 scripts/odoo-run.py shell -c "$run/new.conf" -d "$db" --no-http --log-level=warn; }

start_fake() {
    PYTHONPATH=whatsapp_coexistence/tools python3 -u -m fake_graph --port 0 \
        --webhook-url "http://127.0.0.1:$http_port/whatsapp_coexistence/webhook" \
        >"$run/fake_graph.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 50); do
        fake=$(sed -n 's/^fake Graph API listening on //p' "$run/fake_graph.log")
        [ -n "$fake" ] && return 0
        sleep 0.2
    done
    echo "the fake Graph server did not start" >&2
    exit 1
}
start_odoo() {  # start_odoo base|new
    # exec: the PID kept is the server's own, so that cleanup stops it.
    (exec python3 scripts/odoo-run.py -c "$run/$1.conf" -d "$db" --http-port="$http_port" \
        --http-interface=127.0.0.1 >"$run/odoo_$1.log" 2>&1) &
    pids+=($!)
    for _ in $(seq 1 120); do
        curl -fsS "http://127.0.0.1:$http_port/web/health" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "Odoo ($1) did not start" >&2
    tail -n 30 "$run/odoo_$1.log" >&2
    exit 1
}
fake_post() { curl -fsS -X POST "$fake/_fake/$1" -H 'Content-Type: application/json' -d "$2"; }

echo "== upgrade check: install $base_commit ($(git -C "$base" log -1 --format=%s | cut -c1-60))"
odoo_base -d "$db" -i whatsapp_coexistence --stop-after-init --http-port="$http_port" \
    --log-level=warn >"$run/install_base.log" 2>&1 ||
    { tail -n 30 "$run/install_base.log"; exit 1; }

start_fake
shell_base >"$run/seed_config.log" 2>&1 <<PY
env["ir.config_parameter"].sudo().set_param("whatsapp_coexistence.graph_base_url", "$fake")
env.cr.commit()
PY
start_odoo base
CLINIC=106540352242922
SALON=206540352242922
fake_post inbound "{\"phone_number_id\": \"$CLINIC\", \"from\": \"5511912345678\", \"name\": \"Maria Souza\", \"text\": \"Oi, tudo bem?\"}" >/dev/null
fake_post inbound "{\"phone_number_id\": \"$SALON\", \"from\": \"5521998765432\", \"name\": \"Ana Lima\", \"text\": \"Tem horário amanhã?\"}" >/dev/null
fake_post echo "{\"phone_number_id\": \"$CLINIC\", \"to\": \"5511912345678\", \"text\": \"Temos sim!\"}" >/dev/null
fake_post contacts "{\"phone_number_id\": \"$SALON\", \"phone_number\": \"5521997770000\", \"action\": \"add\", \"full_name\": \"Bruna Reis\"}" >/dev/null
# A message sent through the Graph API and recorded as the send job would, then its statuses.
wamid=$(shell_base 2>>"$run/seed.log" <<'PY' | tail -n 1
account = env.ref("whatsapp_coexistence.demo_account_clinic")
client = account._wac_client()
result = client.send_message(account.phone_number_id, {
    "messaging_product": "whatsapp", "to": "5511912345678", "type": "text",
    "text": {"body": "Lembrete: sua consulta é amanhã."}})
env["wac.message"].sudo().create({
    "company_id": account.company_id.id, "account_id": account.id, "direction": "out",
    "source": "api", "message_type": "text", "body": "Lembrete: sua consulta é amanhã.",
    "wamid": result.wamid, "status": "accepted", "recipient_input": "5511912345678"})
env.cr.commit()
print(result.wamid)
PY
)
fake_post status "{\"wamid\": \"$wamid\", \"status\": \"delivered\"}" >/dev/null
fake_post status "{\"wamid\": \"$wamid\", \"status\": \"read\"}" >/dev/null
shell_base >>"$run/seed.log" 2>&1 <<'PY'
import time
for account in env["wac.account"].search([]):
    account.action_test_connection()  # connected, as a company in production is
    account.action_sync_templates()
env.cr.commit()
# The job runner of the running Odoo processes the deliveries: wait for it.
for _ in range(240):
    env.invalidate_all()
    env.cr.rollback()
    if not env["queue.job"].search_count([("state", "not in", ("done", "failed", "cancelled"))]):
        break
    time.sleep(0.5)
PY
cleanup
# With no job runner: an appointment of the clinic (dry run) whose confirmation stays queued.
shell_base >>"$run/seed.log" 2>&1 <<'PY'
from datetime import datetime, timedelta
clinic = env.ref("whatsapp_coexistence.demo_company_clinic")
# Meta's sample template (no parameter) as the confirmation: the clinic runs in dry run.
env["wac.template.mapping"].create({
    "company_id": clinic.id, "message_type": "confirmation",
    "template_id": env["wac.template"].search([
        ("company_id", "=", clinic.id), ("name", "=", "hello_world")], limit=1).id})
customer = env["res.partner"].create({"name": "Maria Souza", "mobile": "+55 11 91234-5678",
                                      "country_id": env.ref("base.br").id})
start = (datetime.utcnow() + timedelta(days=3)).replace(hour=17, minute=0, second=0,
                                                         microsecond=0)
admin = env.ref("base.user_admin")
env["calendar.event"].with_user(admin).with_company(clinic).create({
    "name": "Limpeza", "start": start, "stop": start + timedelta(minutes=45),
    "user_id": admin.id, "wa_company_id": clinic.id,
    "partner_ids": [(6, 0, [admin.partner_id.id, customer.id])]})
env.cr.commit()
PY

counts() {  # counts base|new FILE
    "shell_$1" 2>>"$run/counts.log" <<'PY' >"$2"
import json
tables = ["wac_account", "wac_contact", "wac_message", "wac_message_status", "wac_template",
          "wac_template_mapping", "wac_webhook_delivery", "wac_webhook_event", "calendar_event", "res_partner"]
result = {}
for table in tables:
    env.cr.execute("SELECT count(*) FROM %s" % table)
    result[table] = env.cr.fetchone()[0]
env.cr.execute("SELECT count(*) FROM queue_job WHERE model_name = 'wac.send' "
               "AND method_name = '_wac_job_send' AND state = 'pending'")
result["queued send jobs"] = env.cr.fetchone()[0]
env.cr.execute("SELECT count(*) FROM wac_account WHERE access_token_enc IS NOT NULL")
result["encrypted tokens"] = env.cr.fetchone()[0]
print(json.dumps(result, sort_keys=True))
PY
}
counts base "$run/counts_before.json"
echo "   rows before: $(cat "$run/counts_before.json")"
python3 - "$run/counts_before.json" <<'PY'
import json
import sys

counts = json.load(open(sys.argv[1]))
empty = [name for name, count in counts.items() if not count]
if empty:
    sys.exit("upgrade check: the seed left these empty: %s" % ", ".join(empty))
PY

echo "== upgrade check: -u whatsapp_coexistence with this checkout"
odoo_new -d "$db" -u whatsapp_coexistence --stop-after-init --http-port="$http_port" \
    --log-level=info >"$run/upgrade.log" 2>&1 ||
    { tail -n 30 "$run/upgrade.log"; exit 1; }
if grep -E " (WARNING|ERROR|CRITICAL) " "$run/upgrade.log"; then
    echo "upgrade check FAILED: warnings or errors in $run/upgrade.log" >&2
    exit 1
fi
counts new "$run/counts_after.json"
if ! cmp -s "$run/counts_before.json" "$run/counts_after.json"; then
    echo "upgrade check FAILED: rows changed: $(cat "$run/counts_after.json")" >&2
    exit 1
fi

start_fake
shell_new >"$run/after_config.log" 2>&1 <<PY
env["ir.config_parameter"].sudo().set_param("whatsapp_coexistence.graph_base_url", "$fake")
env.cr.commit()
PY
start_odoo new
status=$(fake_post inbound "{\"phone_number_id\": \"$CLINIC\", \"from\": \"5511912345678\", \"text\": \"Obrigada!\"}" |
    python3 -c "import json, sys; print(json.load(sys.stdin)['status'])")
shell_new 2>>"$run/after.log" <<'PY' | tee "$run/after_checks.log"
import time
for account in env["wac.account"].search([], order="id"):
    result = account.action_test_connection()["params"]
    print("   Test connection, %s: %s" % (account.company_id.name, result["type"]))
    assert result["type"] == "success", result
# The daily template sync (noupdate data) runs on the model that now holds it.
cron = env.ref("whatsapp_coexistence.ir_cron_wac_template_sync")
cron.method_direct_trigger()
print("   template sync cron: %s, ran" % cron.model_id.model)
assert cron.model_id.model == "wac.template", cron.model_id.model
env.cr.commit()
# The send job queued by the old version is run by the new one's job runner.
for _ in range(240):
    env.invalidate_all()
    env.cr.rollback()
    jobs = env["queue.job"].search([("model_name", "=", "wac.send"),
                                    ("method_name", "=", "_wac_job_send")])
    if jobs and all(job.state in ("done", "failed") for job in jobs):
        break
    time.sleep(0.5)
print("   queued send job: %s (%s)" % (", ".join(jobs.mapped("state")),
                                      "; ".join(jobs.mapped("result") or [""])))
assert jobs and set(jobs.mapped("state")) == {"done"}, jobs.mapped("exc_info")
PY
echo "   webhook after the upgrade: HTTP $status"
[ "$status" = 200 ] || { echo "upgrade check FAILED: the webhook answered $status" >&2; exit 1; }
echo "upgrade check: passed (rows kept, tokens decrypt, webhook 200, queued job ran)"
