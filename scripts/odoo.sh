#!/usr/bin/env bash
# Run the importable Odoo 18 against this checkout's PostgreSQL, with this repository on the
# addons path:  scripts/odoo.sh [shell] [odoo options...]
# It writes .run/odoo.conf once (database, addons path, data dir, encryption key) and reuses it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
run=${WAC_RUN_DIR:-$here/.run}
conf=$run/odoo.conf
# The job channels are this addon's, not the machine's: kept current below in a config written
# by an older checkout (the file itself is kept for its encryption key).
channels="root:2,root.whatsapp:2,root.whatsapp.webhook:1,root.whatsapp.history:1,root.whatsapp.media:1"
"$here/scripts/pg.sh" start
if [ ! -s "$conf" ]; then
    mkdir -p "$run/data"
    python3 - "$here" "$run" "$conf" "$channels" <<'PY'
import os
import sys

import odoo
from cryptography.fernet import Fernet

here, run, conf, channels = sys.argv[1:]
package_dir = os.path.dirname(odoo.__file__)
paths = [os.path.join(package_dir, "addons"), os.path.join(package_dir, "..", "addons"), here]
paths = [os.path.abspath(p) for p in paths if os.path.isdir(p)]
with open(conf, "w") as handle:
    handle.write(f"""[options]
addons_path = {",".join(paths)}
data_dir = {run}/data
db_host = {os.environ.get("PGHOST", "127.0.0.1")}
db_port = {os.environ.get("WAC_PGPORT", os.environ.get("PGPORT", "55432"))}
db_user = {os.environ.get("PGUSER", "odoo")}
db_password = False
list_db = True
server_wide_modules = base,web,queue_job
wa_coexistence_keys = {Fernet.generate_key().decode()}

[queue_job]
channels = {channels}
""")
os.chmod(conf, 0o600)
PY
fi
if ! grep -qx "channels = $channels" "$conf"; then
    sed -i "s/^channels = .*/channels = $channels/" "$conf"
fi
command=()
case "${1:-}" in shell|neutralize|populate) command=("$1"); shift ;; esac
exec python3 "$here/scripts/odoo-run.py" "${command[@]}" -c "$conf" "$@"
