"""Fake Meta Graph API (WhatsApp Cloud API, coexistence) for tests, the sandbox demo and benchmarks.

Stdlib only, bound to 127.0.0.1. Run it with ``PYTHONPATH=whatsapp_coexistence/tools python -m
fake_graph --port 8765`` or start it from Python::

    from odoo.addons.whatsapp_coexistence.tools.fake_graph import FakeGraphServer

    with FakeGraphServer(port=0, app_secret="s3cret", webhook_url=url) as srv:
        ...  # point the Graph client at srv.url

See :class:`~.server.FakeGraphServer` for the Python control API and ``seed_demo.json`` for the
demo data (two Brazilian WABAs, one of them a coexistence number).

Where things live: ``server.py`` (HTTP routes, webhook delivery, the control API), ``state.py``
(:class:`~.state.FakeState`: seed, config, tokens and Embedded Signup, nodes, subscriptions,
faults, the request log), with its parts ``state_templates.py``, ``state_sending.py`` (sends and
media uploads) and ``state_sync.py`` (contacts and history sync, simulated inbound webhooks);
``wire.py`` (settings, errors, field lists, payload builders); ``media.py`` and ``uploads.py``
(media downloads and uploads).
"""

from .server import FakeGraphServer
from .state import FakeState
from .wire import DEFAULT_CONFIG, SEED_PATH, GraphError, load_seed

__all__ = ["DEFAULT_CONFIG", "SEED_PATH", "FakeGraphServer", "FakeState", "GraphError",
           "load_seed"]
