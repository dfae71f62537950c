# Shared by the scripts: sourced, not run.

# OCA queue_job comes from PyPI; its wheel requires the "odoo" distribution, which is not on PyPI,
# so it is installed without dependencies next to the importable Odoo, at the pinned version.
ensure_queue_job() {
    local spec
    spec=$(grep -E '^odoo-addon-queue-job==' "$here/requirements.txt")
    [ "$(pip show odoo-addon-queue_job 2>/dev/null | sed -n 's/^Version: //p')" = "${spec#*==}" ] ||
        python3 -m pip install -q --no-deps "$spec"
}

# The rest of requirements.txt, installed as usual (pip does nothing when they are satisfied).
ensure_requirements() {
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q -r <(grep -vE '^odoo-addon-queue-job' "$here/requirements.txt")
}

# What the suite itself runs with, from requirements-dev.txt: pytest, hypothesis (the property
# tests) and websocket-client (without it Odoo skips every browser tour). The optional tools
# there (pytest-odoo, pylint-odoo) are .ci/run's to install: the suite works with and without.
ensure_test_tools() {
    python3 -c "import pytest, hypothesis, websocket" 2>/dev/null ||
        PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q \
            $(grep -E '^(pytest|hypothesis|websocket-client)[<>=]' "$here/requirements-dev.txt")
}
