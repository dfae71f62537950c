#!/usr/bin/env bash
# make demo: a demo database with two companies in sandbox mode, the fake Graph server and Odoo.
#   scripts/demo.sh           start everything and wait (Ctrl-C stops both servers)
#   scripts/demo.sh --check   start, play the story, assert it and print its counts, stop
# Needs an importable Odoo 18 (see README). Environment: WAC_DEMO_DB (wac_demo),
# WAC_DEMO_PORT (8069), WAC_FAKE_PORT (8765).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export WAC_RUN_DIR=${WAC_RUN_DIR:-$here/.run/demo}
db=${WAC_DEMO_DB:-wac_demo}
port=${WAC_DEMO_PORT:-8069}
fake_port=${WAC_FAKE_PORT:-8765}
check=0
[ "${1:-}" = --check ] && check=1

if ! python3 -c 'import sys, odoo; sys.exit(odoo.release.version_info[0] != 18)' 2>/dev/null; then
    echo "Odoo 18 is not importable by python3: install Odoo 18 first (see README)." >&2
    exit 1
fi
# shellcheck source=scripts/lib.sh
. "$here/scripts/lib.sh"
ensure_requirements
ensure_queue_job
scripts/pg.sh start
mkdir -p "$WAC_RUN_DIR"

if ! psql -h 127.0.0.1 -p "${WAC_PGPORT:-55432}" -U odoo -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    echo "Creating the demo database $db (demo data: Clínica Sorriso and Salão Bela)..."
    scripts/odoo.sh -d "$db" -i whatsapp_coexistence --stop-after-init --http-port="$port" \
        --log-level=warn >"$WAC_RUN_DIR/demo_install.log" 2>&1 ||
        { tail -n 30 "$WAC_RUN_DIR/demo_install.log"; exit 1; }
else
    echo "Updating the addon in the demo database $db..."
    scripts/odoo.sh -d "$db" -u whatsapp_coexistence --stop-after-init --http-port="$port" \
        --log-level=warn >"$WAC_RUN_DIR/demo_install.log" 2>&1 ||
        { tail -n 30 "$WAC_RUN_DIR/demo_install.log"; exit 1; }
fi

# The demo data points at the fake server's default port: follow WAC_FAKE_PORT (a sandbox
# URL only; a real Graph URL is never touched).
scripts/odoo.sh shell -d "$db" --no-http --log-level=warn >/dev/null <<PY
params = env["ir.config_parameter"].sudo()
if (params.get_param("whatsapp_coexistence.graph_base_url") or "").startswith("http://127.0.0.1:"):
    params.set_param("whatsapp_coexistence.graph_base_url", "http://127.0.0.1:$fake_port")
env.cr.commit()
PY

pids=()
cleanup() { [ "${#pids[@]}" = 0 ] || kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

PYTHONPATH=whatsapp_coexistence/tools python3 -m fake_graph --port "$fake_port" \
    --webhook-url "http://127.0.0.1:$port/whatsapp_coexistence/webhook" \
    >"$WAC_RUN_DIR/fake_graph.log" 2>&1 &
pids+=($!)
scripts/odoo.sh -d "$db" --http-port="$port" --http-interface=127.0.0.1 \
    >"$WAC_RUN_DIR/odoo.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$port/web/health" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/web/health" >/dev/null ||
    { echo "Odoo did not start; see $WAC_RUN_DIR/odoo.log" >&2; tail -n 30 "$WAC_RUN_DIR/odoo.log"; exit 1; }

echo "Playing the demo story (templates, a week of appointments, replies, history)..."
WAC_FAKE_URL="http://127.0.0.1:$fake_port" scripts/odoo.sh shell -d "$db" --no-http \
    --log-level=warn <scripts/demo_story.py

if [ "$check" = 1 ]; then
    scripts/odoo.sh shell -d "$db" --no-http --log-level=warn <scripts/demo_check.py
    exit 0
fi

cat <<EOF2

  WhatsApp Coexistence demo is running.
    Odoo:        http://127.0.0.1:$port/odoo   login: admin   password: admin
    Fake Graph:  http://127.0.0.1:$fake_port   (sandbox: no Meta account needed)

  Try: WhatsApp › Configuration › Accounts › Clínica Sorriso › Test connection.
  A customer writes to the clinic (the message arrives through the signed webhook):
    curl -s -X POST http://127.0.0.1:$fake_port/_fake/inbound \\
      -d '{"phone_number_id": "106540352242922", "from": "5511991234567", "name": "Maria", "text": "Oi!"}'
  Logs: $WAC_RUN_DIR/odoo.log, $WAC_RUN_DIR/fake_graph.log. Ctrl-C stops both servers.
EOF2
wait
