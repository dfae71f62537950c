"""Pytest setup for the pure layer: make ``whatsapp_coexistence/tools`` importable, and the
hypothesis profiles of the property tests.

Packages under ``tools`` (``wa_cloud``, ``fake_graph``) are imported as top-level packages,
without Odoo: ``import wa_cloud``. Meta's payload shapes live with the Odoo tests
(``whatsapp_coexistence/tests/payloads.py``, pure data) and are shared as ``import payloads``.

Hypothesis: no deadline (the machine is shared; a slow example is not a failure). Under CI
(``CI=true``) the examples are derandomized and no example database is kept, so a run fails
only on what the code does, not on what this run's random draw found; locally each run draws
new examples and replays the failures it kept in ``.hypothesis/``.
"""

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

ADDON_DIR = Path(__file__).resolve().parent.parent / "whatsapp_coexistence"
for path in (ADDON_DIR / "tools", ADDON_DIR / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

_PROFILE = {"deadline": None,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much]}
settings.register_profile("wac", **_PROFILE)
settings.register_profile("ci", derandomize=True, database=None, **_PROFILE)
settings.load_profile("ci" if os.environ.get("CI") else "wac")
