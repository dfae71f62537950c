"""Command line entry point: ``python -m fake_graph --port 8765 [--seed FILE] [--webhook-url URL]
[--app-secret S] [--verbose]`` (with ``PYTHONPATH=whatsapp_coexistence/tools``)."""

import argparse
import contextlib
import signal
import sys
import threading

from .server import FakeGraphServer, seeded_tokens


def main(argv=None):
    """Start the fake Graph server in the foreground until Ctrl-C or SIGTERM.

    :param list argv: arguments (default ``sys.argv[1:]``).
    :rtype: int
    """
    parser = argparse.ArgumentParser(
        prog="fake_graph", description="Fake Meta Graph API (WhatsApp Cloud API) on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0 = any free port)")
    parser.add_argument("--seed", help="seed JSON file (default: the bundled seed_demo.json)")
    parser.add_argument("--webhook-url", help="where to POST webhooks, e.g. "
                        "http://127.0.0.1:8069/whatsapp_coexistence/webhook")
    parser.add_argument("--app-id", help="override the seed's Meta app id")
    parser.add_argument("--app-secret", help="override the seed's Meta app secret")
    parser.add_argument("--verbose", action="store_true", help="log requests and webhooks")
    args = parser.parse_args(argv)

    srv = FakeGraphServer(port=args.port, app_secret=args.app_secret, app_id=args.app_id,
                          seed=args.seed, webhook_url=args.webhook_url, verbose=args.verbose)
    srv.start()
    done = threading.Event()
    # SIGTERM (docker stop, CI teardown) must stop as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    lines = [
        f"fake Graph API listening on {srv.url}",
        "  app_id={} app_secret={}".format(srv.app_id, "…" + srv.app_secret[-4:]),
        "  webhooks -> %s" % (srv.config["webhook_url"] or "(none; POST /_fake/config)"),
    ]
    for waba_id, name, phones, token in seeded_tokens(srv):
        lines.append("  WABA {} {} phones {} token {}".format(
            waba_id, name, ", ".join(phones), token))
    lines.append(f"  control API: {srv.url}/_fake/")
    # A command-line tool: this banner is for the person who started the fake.
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            while not done.wait(1.0):
                pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
