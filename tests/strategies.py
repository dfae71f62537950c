"""Hypothesis strategies for webhook bodies, shared by ``tests/test_property_*.py``.

Three sources, from the most realistic to the most arbitrary:

* :func:`meta_bodies`: one of Meta's shapes with one to three mutations
  (``webhook_mutations``), sometimes with a valid message in front of it;
* :func:`envelopes`: Meta's envelope with arbitrary JSON at every level below it;
* :func:`json_objects`: any JSON object.

Each yields ``bytes`` that ``json.loads`` accepts as an object: what the webhook controller
lets through to the parsers. Strings may hold NUL and, with ``surrogates``, lone surrogates
(written as the ``\\udXXX`` escapes of Meta's ASCII-escaped JSON); integers go beyond 64 bits;
floats are finite (``NaN`` and ``1e400`` are refused at the door: see the stream tests).
"""

import json

from hypothesis import assume
from hypothesis import strategies as st

import webhook_mutations
from webhook_mutations import OBJECT, Pairs

#: Small enough to keep the pure suite well under a minute; the fuzz bench sends the big ones.
#: Nesting stays under what ``json.loads`` (the oracle) can build.
SMALL = {"huge_string": {"sizes": (300, 5_000)}, "deep_nesting": {"depths": (8, 64, 200)},
         "many_items": {"count": 40}}
MAX_BODY = 3 * 1024 * 1024  # Meta sends at most 3 MB


def texts(surrogates=False):
    """Any text: NUL, controls, emoji, RTL, combining marks, and lone surrogates if asked."""
    # hypothesis leaves surrogates (category Cs) out unless told otherwise.
    alphabet = st.characters(exclude_categories=() if surrogates else ("Cs",))
    return st.one_of(
        st.text(alphabet, max_size=20),
        st.sampled_from(webhook_mutations.ODD_TEXT if surrogates else [
            t for t in webhook_mutations.ODD_TEXT if not any(
                "\ud800" <= c <= "\udfff" for c in t)]),
    )


def scalars(surrogates=False):
    return st.one_of(
        st.none(), st.booleans(),
        st.integers(), st.integers(min_value=-(10**40), max_value=10**40),
        st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**300]),
        st.floats(allow_nan=False, allow_infinity=False),
        texts(surrogates),
    )


def json_values(surrogates=False, duplicates=False, max_leaves=30):
    """Any JSON value; objects may repeat a key (as :class:`~webhook_mutations.Pairs`)."""
    keys = st.one_of(st.sampled_from(["id", "field", "value", "type", "text", "from", "a"]),
                     texts(surrogates))

    def objects(children):
        plain = st.dictionaries(keys, children, max_size=5)
        if not duplicates:
            return plain
        return st.one_of(plain, st.lists(st.tuples(keys, children), max_size=5).map(Pairs))

    return st.recursive(scalars(surrogates),
                        lambda children: st.one_of(st.lists(children, max_size=5),
                                                   objects(children)),
                        max_leaves=max_leaves)


def _body(doc, ascii_only):
    body = webhook_mutations.dumps(doc, ascii_only=ascii_only)
    assume(len(body) < MAX_BODY)
    try:
        loaded = json.loads(body)
    except (ValueError, RecursionError):
        loaded = None
    assume(isinstance(loaded, dict))  # what the controller refuses never reaches a parser
    return body


@st.composite
def json_objects(draw, surrogates=False, duplicates=False):
    """Any JSON object, as bytes."""
    doc = draw(st.dictionaries(st.text(max_size=8), json_values(surrogates, duplicates),
                               max_size=4))
    return _body(doc, draw(st.booleans()))


@st.composite
def envelopes(draw, surrogates=False, duplicates=False):
    """Meta's envelope (``object``, ``entry[].changes[]``) with arbitrary JSON inside."""
    values = json_values(surrogates, duplicates, max_leaves=12)
    fields = st.one_of(st.sampled_from(sorted(
        ["messages", "history", "smb_message_echoes", "smb_app_state_sync", "user_preferences",
         "account_update", "message_template_status_update", "message_template_quality_update",
         "template_category_update", "unknown"])), values)
    change = st.fixed_dictionaries({"field": fields, "value": st.one_of(
        st.dictionaries(st.sampled_from([
            "metadata", "messages", "statuses", "contacts", "history", "message_echoes",
            "state_sync", "user_preferences", "errors", "event", "waba_info"]), values,
            max_size=4), values)})
    entry = st.fixed_dictionaries({"id": values, "changes": st.one_of(
        st.lists(st.one_of(change, values), max_size=3), values)})
    doc = {"object": draw(st.one_of(st.just(OBJECT), values)),
           "entry": draw(st.one_of(st.lists(st.one_of(entry, values), max_size=3), values))}
    return _body(doc, draw(st.booleans()))


@st.composite
def meta_bodies(draw, surrogates=False, duplicates=True):
    """One of Meta's shapes, mutated (``webhook_mutations``), as bytes.

    Without ``surrogates`` the lone-surrogate oddities are left out; without ``duplicates``
    no object repeats a key.
    """
    rng = draw(st.randoms(use_true_random=False))
    names = sorted(set(webhook_mutations.MUTATIONS) - (set() if duplicates else {
        "duplicate_key"}))
    doc, _names = webhook_mutations.mutate(rng, names=names, **SMALL)
    if draw(st.booleans()):
        doc, _where = webhook_mutations.with_neighbour(
            rng, doc, "wamid.neighbour", "5511987654321")
    body = _body(doc, draw(st.booleans()))
    if not surrogates:
        assume(not _has_surrogate(json.loads(body)))
    return body


def _has_surrogate(value):
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= c <= "\udfff" for c in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def bodies(surrogates=False, duplicates=False):
    """All three sources."""
    return st.one_of(meta_bodies(surrogates, duplicates), envelopes(surrogates, duplicates),
                     json_objects(surrogates, duplicates))
