"""Fake Meta Graph API (WhatsApp Cloud API, coexistence) for tests, the sandbox demo and benchmarks.

Stdlib only, bound to 127.0.0.1. Run it with ``PYTHONPATH=whatsapp_coexistence/tools python -m
fake_graph --port 8765`` or start it from Python::

    from odoo.addons.whatsapp_coexistence.tools.fake_graph import FakeGraphServer

    with FakeGraphServer(port=0, app_secret="s3cret", webhook_url=url) as srv:
        ...  # point the Graph client at srv.url

See :class:`~.server.FakeGraphServer` for the Python control API and ``seed_demo.json`` for the
demo data (two Brazilian WABAs, one of them a coexistence number).
"""

from .server import FakeGraphServer
from .state import DEFAULT_CONFIG, SEED_PATH, FakeState, GraphError, load_seed

__all__ = ["DEFAULT_CONFIG", "SEED_PATH", "FakeGraphServer", "FakeState", "GraphError",
           "load_seed"]
