"""Count what the fuzz's deliveries ask the webhook jobs to do, without Odoo (issue 9).

    python3 bench/fuzz_census.py [--n 500] [--seed 9] [--top 5]

Rebuilds the ``--n`` deliveries of ``bench/fuzz_webhook.py`` (same seed, same bodies), splits
each with the delivery job's own parser (``webhook_stream.parse_body``) and counts:

* events (one per change) by field, and whether the bench server's account would route them;
* units (the objects a handler applies one by one when a batch fails) by kind: statuses,
  inbound messages, echoes, history messages, state-sync contacts, errors, preferences;
* the heaviest deliveries by routed events, to profile their jobs
  (``bench/webhook_profile_job.py``).

Prints a table and ``BENCH_JSON {...}``.
"""

import argparse
import collections
import io
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(REPO, "whatsapp_coexistence", "tools")]

import fuzz_webhook  # noqa: E402

from wa_cloud import webhook, webhook_stream  # noqa: E402

#: The ids the bench server's one account is connected with (``webhook_harness.py``).
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"


def routed(change):
    """``True`` when the bench server's account owns ``change``.

    The same test as ``wac.webhook.event._wac_route``.
    """
    if change.field not in webhook.HANDLED_FIELDS:
        return False
    if change.phone_number_id or change.field in webhook.MESSAGE_PATH_FIELDS:
        return change.phone_number_id == PHONE_NUMBER_ID
    return change.waba_id == WABA_ID


def units_of(change, decoded, flat):
    """``{kind: count}`` of the objects the handler of ``change`` applies."""
    value, field = change.value, change.field
    if not isinstance(value, dict):
        return {}
    if field == "messages":
        return {"status": len(webhook.statuses(value)),
                "message": len(webhook.inbound_messages(value)),
                "number change": len(webhook.number_changes(value)),
                "error": len(webhook.change_errors(value))}
    if field == "smb_message_echoes":
        return {"echo": len(webhook.echoes(value))}
    if field == "smb_app_state_sync":
        return {"contact": len(webhook.state_sync(value))}
    if field == "user_preferences":
        return {"preference": len(webhook.user_preferences(value))}
    if field == "history":
        media = webhook.history_media(value)
        if media:
            return {"history media": len(media)}
        return {"history message": sum(
            len(thread.messages) for chunk in webhook.history(decoded[flat].value)
            for thread in chunk.threads)}
    return {"other": 1}


def _decoded(body):
    """Every change whole (history arrays included), as ``webhook.parse_payload`` builds them.

    ``json.loads`` once per body: the streaming reader would parse the body again for each
    history change (500 of them in a grown body).
    """
    try:
        return webhook.parse_payload(webhook.decode_body(body))
    except (webhook.PayloadError, RecursionError, ValueError):
        return webhook_stream.parse_body(lambda: io.BytesIO(body))  # history left unread


def census(n, seed, top):
    events, units, heaviest = collections.Counter(), collections.Counter(), []
    for index in range(n):
        kind, body, _wamid, _what = fuzz_webhook.delivery(seed, index)
        if kind != "poisoned":
            events["(invalid body, 400)"] += 1
            continue
        try:
            changes = webhook_stream.parse_body(lambda b=body: io.BytesIO(b))
        except webhook.PayloadError:
            events["(delivery ignored)"] += 1
            continue
        decoded = _decoded(body)
        mine = 0
        for flat, change in enumerate(changes):
            if not routed(change):
                label = "ignored" if change.field not in webhook.HANDLED_FIELDS else "unroutable"
                events["%s (%s)" % (label, (change.field or "?")[:30])] += 1
                continue
            mine += 1
            events[change.field or "?"] += 1
            for unit, count in units_of(change, decoded, flat).items():
                units[unit] += count
        heaviest.append((mine, index))
    heaviest.sort(reverse=True)
    return events, units, heaviest[:top]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", default="9")
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    events, units, heaviest = census(args.n, args.seed, args.top)
    print("events by field (routed to the account unless said):")
    for name, count in events.most_common():
        print("  %-60s %7d" % (name, count))
    print("units by kind (routed events only):")
    for name, count in units.most_common():
        print("  %-60s %7d" % (name, count))
    print("heaviest deliveries (routed events, index):", heaviest)
    print("BENCH_JSON " + json.dumps({"events": events, "units": units,
                                     "heaviest": heaviest}))


if __name__ == "__main__":
    main()
