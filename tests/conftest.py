"""Pytest setup for the pure layer: make ``whatsapp_coexistence/tools`` importable.

Packages under ``tools`` (``wa_cloud``, ``fake_graph``) are imported as top-level packages,
without Odoo: ``import wa_cloud``. Meta's payload shapes live with the Odoo tests
(``whatsapp_coexistence/tests/payloads.py``, pure data) and are shared as ``import payloads``.
"""

import sys
from pathlib import Path

ADDON_DIR = Path(__file__).resolve().parent.parent / "whatsapp_coexistence"
for path in (ADDON_DIR / "tools", ADDON_DIR / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
