"""Pytest setup for the pure layer: make ``whatsapp_coexistence/tools`` importable.

Packages under ``tools`` (``wa_cloud``, ``fake_graph``) are imported as top-level packages,
without Odoo: ``import wa_cloud``.
"""

import sys
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent.parent / "whatsapp_coexistence" / "tools"
if str(TOOLS_DIR) not in sys.path:
    sys.path.insert(0, str(TOOLS_DIR))
