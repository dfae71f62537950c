#!/usr/bin/env bash
# The whole suite: ruff, the pure layer with pytest, then (when Odoo 18 is importable) an install
# check and the Odoo suite against a real PostgreSQL. Prints "odoo: N passed, N failed" last.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
failed=0

echo "== ruff"
if command -v ruff >/dev/null; then ruff check . || failed=1; else echo "ruff not installed: skipped"; fi

echo "== pylint-odoo (OCA's mandatory checks for 18.0: .pylintrc-mandatory)"
if python3 -c "import pylint_odoo" 2>/dev/null && command -v oca-checks-odoo-module >/dev/null; then
    lint=0
    pylint --rcfile=.pylintrc-mandatory --output-format=text whatsapp_coexistence || lint=1
    # The XML, CSV and PO checks of that list now live in oca-odoo-pre-commit-hooks.
    oca-checks-odoo-module --no-verbose --config=.oca_hooks.cfg whatsapp_coexistence || lint=1
    oca-checks-po --no-verbose --config=.oca_hooks.cfg whatsapp_coexistence/i18n/*.po* || lint=1
    if [ "$lint" = 0 ]; then echo "pylint-odoo: no message"; else echo "pylint-odoo: FAILED"; failed=1; fi
else
    echo "pylint-odoo or oca-odoo-pre-commit-hooks not installed: skipped (requirements-dev.txt)"
fi

# shellcheck source=scripts/lib.sh
. "$here/scripts/lib.sh"
ensure_requirements
ensure_test_tools

echo "== Pure layer (pytest, no Odoo, no network)"
# pyproject.toml turns pytest-odoo off (-p no:odoo) when it is installed: no database here.
python3 -m pytest tests -q -p no:cacheprovider
rc=$?
if [ "$rc" = 5 ]; then
    echo "ERROR: pytest collected no tests"
    failed=1
elif [ "$rc" != 0 ]; then
    failed=1
fi

if ! python3 -c 'import sys, odoo; sys.exit(odoo.release.version_info[0] != 18)' 2>/dev/null; then
    cat <<'BANNER'
##########################################################################################
#  SKIPPED: THE ODOO SUITE DID NOT RUN. 'import odoo' (18.0) fails in this python3, so    #
#  nothing of the addon itself was tested. Make Odoo 18 importable and run this again.   #
##########################################################################################
BANNER
    exit "$failed"
fi

ensure_queue_job

export WAC_RUN_DIR="$here/.run/test"
rm -rf "$WAC_RUN_DIR"
logs="$WAC_RUN_DIR/logs"
mkdir -p "$logs"
db="wac_test_$$"

echo "== Install check: a fresh database without demo data, then with demo data"
for demo in without with; do
    flags=(--without-demo=all)
    [ "$demo" = with ] && flags=()
    scripts/odoo.sh -d "${db}_$demo" -i whatsapp_coexistence --stop-after-init \
        --http-port=0 "${flags[@]}" --log-level=warn >"$logs/install_$demo.log" 2>&1
    rc=$?
    # Odoo's own "running as root" notice is not about the addon.
    problems=$(grep -E "WARNING|ERROR|CRITICAL" "$logs/install_$demo.log" | grep -v "Running as user 'root'")
    if [ "$rc" != 0 ] || [ -n "$problems" ]; then
        echo "install $demo demo data: FAILED (exit $rc)"
        grep -v "Running as user 'root'" "$logs/install_$demo.log" | tail -n 40
        failed=1
    else
        echo "install $demo demo data: clean"
    fi
    if [ "$demo" = with ]; then
        # The demo data stores two access tokens and an App Secret: a dump holds ciphertext only.
        dump="$logs/dump.sql"
        pg_dump -h 127.0.0.1 -p "${WAC_PGPORT:-55432}" -U odoo "${db}_$demo" >"$dump"
        leaks=$(grep -c -E "EAAGfake|fake-app-secret" "$dump")
        tokens=$(grep -c "gAAAAA" "$dump")
        if [ "$leaks" != 0 ] || [ "$tokens" -lt 3 ]; then
            echo "database dump: FAILED ($leaks plaintext secret lines, $tokens ciphertext lines)"
            failed=1
        else
            echo "database dump: no plaintext secret, $tokens Fernet ciphertext line(s)"
        fi
        rm -f "$dump"
    fi
    dropdb -h 127.0.0.1 -p "${WAC_PGPORT:-55432}" -U odoo --if-exists "${db}_$demo"
done

echo "== Upgrade check (a database of the last 18.0.1.1.0 commit, then -u with this checkout)"
# It prints its own SKIPPED banner when the base commit is not in this git history.
if scripts/upgrade_check.sh >"$logs/upgrade_check.log" 2>&1; then
    grep -E "SKIPPED|^upgrade check|rows before|Test connection|queued send job|webhook after" \
        "$logs/upgrade_check.log"
else
    tail -n 40 "$logs/upgrade_check.log"
    echo "upgrade check: FAILED (see $logs/upgrade_check.log and .run/upgrade/)"
    failed=1
fi

echo "== Odoo suite (real PostgreSQL, real HTTP, fake Graph server)"
scripts/odoo.sh -d "$db" -i whatsapp_coexistence --test-tags /whatsapp_coexistence \
    --stop-after-init --http-port="${WAC_TEST_HTTP_PORT:-8169}" --log-level=test \
    >"$logs/odoo_tests.log" 2>&1
rc=$?
grep -E "^(FAIL|ERROR):|odoo.tests.stats|odoo.tests.result| ERROR | CRITICAL " "$logs/odoo_tests.log" | tail -n 60
result=$(grep -oE "[0-9]+ failed, [0-9]+ error\(s\) of [0-9]+ tests" "$logs/odoo_tests.log" | tail -n 1)

# The README's pytest-odoo command, on the database the suite just installed: a transaction
# case file and an HttpCase file, so that running the Odoo tests through pytest keeps working.
if python3 -c "import pytest_odoo" 2>/dev/null; then
    echo "== The same through pytest-odoo (two files)"
    python3 -m pytest -p odoo -p no:cacheprovider -q --odoo-database="$db" \
        --odoo-config="$WAC_RUN_DIR/odoo.conf" --odoo-http \
        whatsapp_coexistence/tests/test_vault.py whatsapp_coexistence/tests/test_webhook.py \
        >"$logs/pytest_odoo.log" 2>&1
    prc=$?
    tail -n 1 "$logs/pytest_odoo.log"
    if [ "$prc" != 0 ]; then
        echo "pytest-odoo: FAILED (exit $prc); see $logs/pytest_odoo.log"
        failed=1
    fi
else
    echo "== pytest-odoo not installed: its run is skipped (.ci/run installs it)"
fi
dropdb -h 127.0.0.1 -p "${WAC_PGPORT:-55432}" -U odoo --if-exists "$db"
if [ -z "$result" ]; then
    total=$(grep -cE "odoo.addons.whatsapp_coexistence.tests.* (Starting|running) " "$logs/odoo_tests.log")
    errors=$(grep -cE "^(FAIL|ERROR):| ERROR .*odoo.addons.whatsapp_coexistence" "$logs/odoo_tests.log")
    if [ "$total" = 0 ]; then
        echo "ERROR: the Odoo suite ran no test (exit $rc); see $logs/odoo_tests.log"
        tail -n 40 "$logs/odoo_tests.log"
        exit 1
    fi
    fail=$errors
else
    read -r f _ e _ _ total _ <<<"$result"
    fail=$((f + e))
fi
[ "$rc" != 0 ] && [ "$fail" = 0 ] && fail=1
[ "$fail" != 0 ] && failed=1
echo "odoo: $((total - fail)) passed, $fail failed"
exit "$failed"
