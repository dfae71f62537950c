"""Read webhook bodies as streams of JSON events: memory bounded by one message, not the payload.

A ``history`` webhook carries up to 3 MB of messages, and decoding it at once costs several
times its size in Python objects (README, benchmarks, "Memory").
Here the body is never decoded as a whole:

* :func:`parse_body` splits a delivery body into :class:`~.webhook.Change` items exactly like
  ``webhook.parse_payload(json.loads(body))``, except that the ``value.history`` array of a
  ``history`` change is skipped, not built: the change's value gets a :data:`HISTORY_REF` marker
  in its place, which says that the items are still in the delivery body.
* :func:`history_items` reads those items back from the body, at the change's flat index, and
  yields their messages one at a time (:class:`HistoryItem`). It also reads a change value
  that still holds its ``history`` array (:func:`load_value`).

Streams come from the caller's ``open_stream()``: a callable that returns a new binary
file-like object (``read(size)``, and ``close()`` if it has one, called once read), because a
history is read in two passes. :class:`SliceReader` is a base for such objects;
:class:`TextReader` serves a ``str``.

JSON is parsed by ijson with its compiled ``yajl2_c`` backend when installed, about as fast as
``json.loads``. That backend refuses integers beyond 64 bits, which ``json.loads`` (and so the
webhook controller) accepts, and mangles unpaired UTF-16 surrogate escapes (``"\\udfff"``: a
decoding error; a lone high surrogate: ``?`` or a wrong character). A stream it refuses, or
that holds such an escape (:class:`_SurrogateWatch`), is read again with ijson's Python
backend, whose lone surrogates become U+FFFD
(:func:`~.webhook.unpaired_surrogates_replaced`). Numbers are decoded as by ``json.loads``
(``use_float``: no ``Decimal``).

Values are built with ``json.loads``'s semantics (a repeated key: the last one wins), but a
structural key repeated in one object (``entry``, ``changes``, ``value``, ``history``,
``threads``, ``messages``) is followed at each occurrence; Meta repeats no key.
"""

import collections
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from dataclasses import replace as dc_replace

import ijson

from .webhook import (
    Change,
    HistoryChunkState,
    PayloadError,
    _dict,
    _history_message,
    _int,
    _key,
    check_object,
    history_header,
    unpaired_surrogates_replaced,
)

#: Key of the marker that replaces a skipped ``history`` array in a change's value:
#: ``{"source": SOURCE_BODY | SOURCE_VALUE, "items": <number of history items>}``.
HISTORY_REF = "wac_history"
#: The items are in the delivery body, in the change at the event's ``change_index``.
SOURCE_BODY = "delivery_body"
#: The items are in the stored change value itself (events stored before streaming).
SOURCE_VALUE = "value"
#: ``change_index`` of the private readers: every change of the body.
ALL_CHANGES = object()
#: Size of the slices :class:`TextReader` encodes at a time (characters).
SLICE_CHARS = 64 * 1024

_OPEN = frozenset({"start_map", "start_array"})
_CLOSE = frozenset({"end_map", "end_array"})


def _compiled_backend():
    try:
        return ijson.get_backend("yajl2_c")
    except ImportError:  # no compiled extension in this install: ijson's own choice
        return ijson.get_backend(ijson.backend)


#: The ijson backend in use: ``yajl2_c`` when its extension is installed.
BACKEND = _compiled_backend()
BACKEND_NAME = BACKEND.__name__.rsplit(".", 1)[-1]
_PYTHON_BACKEND = ijson.get_backend("python")
_BACKENDS = (BACKEND,) if BACKEND is _PYTHON_BACKEND else (BACKEND, _PYTHON_BACKEND)
#: What makes :func:`_read` try the next backend.
_BACKEND_FAILURES = (ijson.JSONError, UnicodeDecodeError)


# ---------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------


class SliceReader:
    """A read-only binary stream over the slices that :meth:`_next_slice` returns.

    Subclasses return ``bytes`` from :meth:`_next_slice`, ``b""`` at the end. A slice may end
    in the middle of a UTF-8 sequence: the JSON parser reassembles it.
    """

    def __init__(self):
        self._buffer = b""
        self._eof = False

    def _next_slice(self):
        raise NotImplementedError

    # The file protocol's read(), not an Odoo ORM method: there is no super() to call.
    def read(self, size=-1):  # pylint: disable=method-required-super
        """Return up to ``size`` bytes (all the rest when ``size`` is negative)."""
        want = size if size is not None and size >= 0 else float("inf")
        while len(self._buffer) < want and not self._eof:
            piece = self._next_slice()
            if piece:
                self._buffer += piece
            else:
                self._eof = True
        if want >= len(self._buffer):
            result, self._buffer = self._buffer, b""
        else:
            result, self._buffer = self._buffer[:size], self._buffer[size:]
        return result

    def close(self):
        """Release what the stream holds; nothing to do here."""


class TextReader(SliceReader):
    """``text`` as a UTF-8 byte stream, encoded :data:`SLICE_CHARS` characters at a time (no
    encoded copy of the whole text)."""

    def __init__(self, text, slice_chars=SLICE_CHARS):
        super().__init__()
        self._text = text
        self._position = 0
        self._slice = slice_chars

    def _next_slice(self):
        piece = self._text[self._position:self._position + self._slice]
        self._position += len(piece)
        return piece.encode("utf-8")


def _close(stream):
    close = getattr(stream, "close", None)
    if close is not None:
        close()


class _UnpairedSurrogate(ijson.JSONError):
    """The stream holds a UTF-16 surrogate escape that the compiled backend would mangle."""


# UTF-16 surrogates as JSON escapes: a high (leading) one must be followed by a low one.
_HIGH = rb"\\u[dD][89abAB][0-9a-fA-F]{2}"
_LOW = rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
_ANY = re.compile(rb"\\u[dD][89a-fA-F]")
_PAIR = re.compile(_HIGH + _LOW)
_LONE_HIGH = re.compile(_HIGH + rb"(?!" + _LOW + rb")")
_LONE_LOW = re.compile(rb"(?<!" + _HIGH + rb")" + _LOW)
_ESCAPE_LEN = 6
_PAIR_LEN = 2 * _ESCAPE_LEN


class _SurrogateWatch:
    """A stream that raises :class:`_UnpairedSurrogate` once the bytes read hold a surrogate
    escape that is not half of a high-low pair (``\\ud83d\\ude00`` is an emoji, the way Meta
    escapes them; ``\\udfff`` alone is not a character).

    Each read is searched with the end of the previous one in front of it, from where the
    previous search could not decide (a pair cut by the read). An escaped backslash followed by
    ``ud800`` looks like an escape too: that costs a read with the Python backend, never a
    wrong result.
    """

    def __init__(self, stream):
        self._stream = stream
        self._carry = b""  # the end of the previous read

    # A plain stream wrapper, not an Odoo model: there is no super().read to call.
    def read(self, size=-1):  # pylint: disable=method-required-super
        """Read from the stream, checking the surrogate escapes of what was read."""
        data = self._stream.read(size)
        window = self._carry + data
        # Fast: every escape of the window is half of a pair (the lookarounds below cost ten
        # times more, and emoji are surrogate pairs).
        if len(_ANY.findall(window)) != 2 * len(_PAIR.findall(window)):
            self._search(window, len(self._carry), more=bool(data))
        self._carry = window[-_PAIR_LEN:]
        return data

    @staticmethod
    def _search(window, kept, more):
        # A high escape was decided once its pair's 12 bytes were read, a low one once its
        # own 6 bytes were: search from the first one that was not.
        for match in _LONE_HIGH.finditer(window, max(0, kept - _PAIR_LEN + 1)):
            if more and match.start() + _PAIR_LEN > len(window):
                break  # its low half may be in the next read
            raise _UnpairedSurrogate("unpaired high surrogate escape")
        if _LONE_LOW.search(window, max(0, kept - _ESCAPE_LEN + 1)):
            raise _UnpairedSurrogate("unpaired low surrogate escape")


def _repaired(events):
    """ijson events, the lone surrogates of strings and keys replaced by U+FFFD."""
    for event, value in events:
        if event in ("string", "map_key"):
            yield event, unpaired_surrogates_replaced(value)
        else:
            yield event, value


class _Parser:
    """One way to turn a binary stream into ijson events: a backend and what guards it."""

    def __init__(self, backend):
        self.backend = backend

    def events(self, stream):
        """The ``basic_parse`` events of ``stream``."""
        if self.backend is _PYTHON_BACKEND:
            return _repaired(self.backend.basic_parse(stream, use_float=True))
        return self.backend.basic_parse(_SurrogateWatch(stream), use_float=True)


_PARSERS = tuple(_Parser(backend) for backend in _BACKENDS)


def _read(open_stream, consume):
    """Run ``consume(events)`` over a new stream; return its result and the parser used.

    :raises PayloadError: the stream is not JSON
    """
    for parser in _PARSERS:
        stream = open_stream()
        try:
            return consume(parser.events(stream)), parser
        except _BACKEND_FAILURES as error:
            failure = error
        finally:
            _close(stream)
    message = str(failure).strip().splitlines()
    raise PayloadError("Webhook body is not JSON: %s" % (message[0] if message else "empty"))


# ---------------------------------------------------------------------------
# Events (ijson.basic_parse: (event, value) pairs)
# ---------------------------------------------------------------------------


def _build(events, event, value):
    """The JSON value that starts with ``(event, value)``, consuming its events.

    Without recursion: a deeply nested value (valid JSON) costs memory, never a
    ``RecursionError``.
    """
    if event not in _OPEN:
        return value
    current = {} if event == "start_map" else []
    parents, key = [], None  # parents: (container, key of ``current`` in it)
    for kind, item in events:
        if kind == "map_key":
            key = item
        elif kind in _OPEN:
            parents.append((current, key))
            current = {} if kind == "start_map" else []
        elif kind in _CLOSE:
            if not parents:
                return current
            child = current
            current, key = parents.pop()
            if isinstance(current, dict):
                current[key] = child
            else:
                current.append(child)
        elif isinstance(current, dict):
            current[key] = item
        else:
            current.append(item)
    raise PayloadError("Webhook body is not JSON: it ends inside a value")


def _skip(events, event):
    """Consume the JSON value that starts with ``event`` without building it.

    :return: how many objects the value holds at its first level (the objects of an array)
    """
    if event not in _OPEN:
        return 0
    depth, objects = 1, 0
    for kind, _value in events:
        if kind in _OPEN:
            if depth == 1 and kind == "start_map":
                objects += 1
            depth += 1
        elif kind in _CLOSE:
            depth -= 1
            if not depth:
                break
    return objects


def _members(events):
    """Yield ``(key, event, value)`` starting each member of the object just opened; the
    caller consumes each member's value before asking for the next."""
    for kind, key in events:
        if kind == "end_map":
            return
        yield (key, *next(events))


def _items(events):
    """Yield ``(event, value)`` starting each item of the array just opened; the caller
    consumes each item before asking for the next."""
    for kind, first in events:
        if kind == "end_array":
            return
        yield kind, first


def _objects_under(events, wanted):
    """Yield once per object item of the array member ``wanted`` of the object just opened
    (other members and items are skipped); the caller reads each object through its end
    before resuming."""
    for key, kind, _first in _members(events):
        if key != wanted or kind != "start_array":
            _skip(events, kind)
            continue
        for item_kind, _item in _items(events):
            if item_kind == "start_map":
                yield
            else:
                _skip(events, item_kind)


# ---------------------------------------------------------------------------
# Envelope
# ---------------------------------------------------------------------------


def _value(events, skip_history):
    """Build the change value just opened; a ``history`` array is skipped when asked.

    :return: ``(value, history items skipped or None)``
    """
    value, skipped = {}, None
    for key, kind, first in _members(events):
        if skip_history and key == "history" and kind == "start_array":
            skipped = _skip(events, kind)
        else:
            value[key] = _build(events, kind, first)
    return value, skipped


def _change(events, skip_history):
    """Read the change just opened: ``(field, value, history items skipped or None)``."""
    field, value, skipped = None, None, None
    for key, kind, first in _members(events):
        if key == "field":
            field = _build(events, kind, first)
        elif key == "value" and kind == "start_map":
            # Meta writes "value" before "field": an unknown field may still be a history.
            value, skipped = _value(events, skip_history and _key(field) in (None, "history"))
        elif key == "value":
            value, skipped = _build(events, kind, first), None
        else:
            _skip(events, kind)
    return field, value, skipped


def _entry(events, entry_index, flat, skip_history, again):
    """Read the entry just opened and return its changes.

    :param flat: flat index of the entry's first change in the body
    :param again: set to which the flat index of a change to read again is added
    """
    entry_id = entry_time = None
    found = []  # the entry's id may follow its changes
    for key, kind, first in _members(events):
        if key == "id":
            entry_id = _build(events, kind, first)
        elif key == "time":
            entry_time = _build(events, kind, first)
        elif key == "changes" and kind == "start_array":
            for change_index, (item_kind, _item) in enumerate(_items(events)):
                if item_kind != "start_map":
                    _skip(events, item_kind)
                    continue
                index = flat + len(found)
                field, value, skipped = _change(events, skip_history(index))
                if skipped is not None and _key(field) == "history":
                    value[HISTORY_REF] = {"source": SOURCE_BODY, "items": skipped}
                elif skipped is not None:
                    again.add(index)
                found.append((change_index, field, value))
        else:
            _skip(events, kind)
    return [
        Change(
            entry_id=_key(entry_id),
            entry_time=_int(entry_time),
            field=_key(field),
            value=_dict(value),
            index=(entry_index, change_index),
        )
        for change_index, field, value in found
    ]


def _envelope(events, skip_history):
    """Read a delivery body: ``(changes, flat indexes of the changes to read again)``.

    :param skip_history: ``skip_history(flat_index)`` says whether to skip that change's
        ``value.history`` array
    """
    kind, _first = next(events)
    if kind != "start_map":
        raise PayloadError("Webhook body is not a JSON object")
    obj, has_entries, changes, again = None, False, [], set()
    for key, kind, first in _members(events):
        if key == "object":
            obj = _build(events, kind, first)
        elif key == "entry" and kind == "start_array":
            has_entries = True
            for entry_index, (item_kind, _item) in enumerate(_items(events)):
                if item_kind == "start_map":
                    changes += _entry(events, entry_index, len(changes), skip_history, again)
                else:
                    _skip(events, item_kind)
        else:
            if key == "entry":
                has_entries = False
            _skip(events, kind)
    check_object(obj, changes)
    if not has_entries:
        raise PayloadError("Webhook entry is not a list")
    return changes, again


def parse_body(open_stream):
    """Split a webhook body into :class:`~.webhook.Change` items without decoding it whole.

    The same changes as ``webhook.parse_payload(json.loads(body))``, except that the
    ``value.history`` array of a ``history`` change is not built: the value gets
    ``{HISTORY_REF: {"source": SOURCE_BODY, "items": n}}`` instead, and
    :func:`history_items` reads the items from the body later.

    :param open_stream: callable returning a new binary stream of the body
    :raises PayloadError: not JSON, not a JSON object, ``object`` is not
        ``whatsapp_business_account`` or ``entry`` is not a list
    :rtype: list[Change]
    """
    (changes, again), _parser = _read(open_stream, lambda e: _envelope(e, lambda _i: True))
    if again:
        # A change whose field came after its value and was not history after all: read the
        # body again, building that change whole (never seen from Meta).
        (changes, _again), _parser = _read(
            open_stream, lambda e: _envelope(e, lambda i: i not in again))
    return changes


def load_value(open_stream):
    """Decode a stored change value, leaving its ``history`` array unread.

    The array, if any, is replaced by ``{HISTORY_REF: {"source": SOURCE_VALUE, "items": n}}``:
    :func:`history_items` then reads it from the same stream (``change_index=None``).

    :raises PayloadError: not JSON
    """
    def consume(events):
        event, first = next(events)
        if event != "start_map":
            return _build(events, event, first)
        value, skipped = _value(events, skip_history=True)
        if skipped is not None:
            value[HISTORY_REF] = {"source": SOURCE_VALUE, "items": skipped}
        return value

    return _read(open_stream, consume)[0]


# ---------------------------------------------------------------------------
# History
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryItem(HistoryChunkState):
    """One ``value.history[]`` item read from a stream: the sync state of a
    :class:`~.webhook.HistoryChunk` (``declined``, ``complete``...), and its messages as an
    iterator instead of a list of threads.

    :ivar messages: iterator of ``(wa_id, HistoryMessage)``, thread after thread in the
        payload's order, each message decoded when it is reached; a thread without messages
        yields ``(wa_id, None)`` once, so that its contact is known too. Read it before asking
        for the next item: what is left unread is then skipped.
    """

    phase: int | None
    chunk_order: int | None
    progress: int | None
    errors: list
    messages: Iterator = dc_field(repr=False, compare=False)


@dataclass(frozen=True)
class _Header:
    """What the first pass learns about an item: its sync state, and the ``id`` of each thread
    that gives it after its messages (by ordinal among the item's thread objects)."""

    state: dict
    late_ids: dict


def _history_arrays(events, change_index):
    """Yield once each ``history`` array of the change is opened, with the change's flat index;
    the caller reads the array through its end before resuming.

    :param change_index: flat index of the change in a delivery body, :data:`ALL_CHANGES` for
        every change of the body, or ``None`` when the stream is the change's value (the index
        yielded is then ``None``); the rest of a body after that change is never read
    """
    kind, _first = next(events)
    if kind != "start_map":
        return
    if change_index is None:
        for _array in _value_arrays(events):
            yield None
        return
    flat = 0
    for _entry in _objects_under(events, "entry"):
        flat = yield from _entry_arrays(events, flat, change_index)
        if change_index is not ALL_CHANGES and flat > change_index:
            return


def _entry_arrays(events, flat, change_index):
    """:func:`_history_arrays` in the entry just opened; return the flat index reached (past
    ``change_index`` once that change is read, the entry then left unfinished)."""
    every = change_index is ALL_CHANGES
    for _change in _objects_under(events, "changes"):
        if not every and flat < change_index:
            _skip(events, "start_map")
            flat += 1
            continue
        for change_key, value_kind, _value in _members(events):
            if change_key == "value" and value_kind == "start_map":
                for _array in _value_arrays(events):
                    yield flat
            else:
                _skip(events, value_kind)
        flat += 1
        if not every:
            return flat
    return flat


def _value_arrays(events):
    for key, kind, _first in _members(events):
        if key == "history" and kind == "start_array":
            yield
        else:
            _skip(events, kind)


def _late_thread_id(events):
    """Read the thread just opened, building only an ``id`` given after its ``messages``.

    :return: ``(True, id)`` for such an id, else ``(False, None)``
    """
    messages_seen, late = False, (False, None)
    for key, kind, first in _members(events):
        if key == "id" and messages_seen:
            late = (True, _key(_build(events, kind, first)))
        else:
            messages_seen = messages_seen or key == "messages"
            _skip(events, kind)
    return late


def _header(events):
    """First pass, one item just opened: its :class:`_Header`."""
    state, late_ids, ordinal = {}, {}, 0
    for key, kind, first in _members(events):
        if key in ("metadata", "errors"):
            state[key] = _build(events, kind, first)
        elif key == "threads" and kind == "start_array":
            for item_kind, _item in _items(events):
                if item_kind != "start_map":
                    _skip(events, item_kind)
                    continue
                late, wa_id = _late_thread_id(events)
                if late:
                    late_ids[ordinal] = wa_id
                ordinal += 1
        else:
            _skip(events, kind)
    return _Header(history_header(state), late_ids)


def _headers(events, change_index):
    """First pass: the :class:`_Header` of each history item of the change (or changes)."""
    headers = []
    for _flat in _history_arrays(events, change_index):
        for kind, _first in _items(events):
            if kind == "start_map":
                headers.append(_header(events))
            else:
                _skip(events, kind)
    return headers


def _thread_messages(events, late, wa_id):
    """Second pass, one thread just opened: yield ``(wa_id, message)``, or ``(wa_id, None)``
    once if it has none.

    :param late: the first pass found the ``id`` (``wa_id``) after the messages
    """
    empty = True
    for key, kind, first in _members(events):
        if key == "id" and not late:
            wa_id = _key(_build(events, kind, first))
        elif key == "messages" and kind == "start_array":
            for item_kind, item in _items(events):
                if item_kind == "start_map":
                    empty = False
                    yield wa_id, _history_message(_build(events, item_kind, item))
                else:
                    _skip(events, item_kind)
        else:
            _skip(events, kind)
    if empty:
        yield wa_id, None


def _messages(events, late_ids):
    """Second pass, one item just opened: yield its threads' ``(wa_id, message or None)``."""
    for ordinal, _thread in enumerate(_objects_under(events, "threads")):
        yield from _thread_messages(events, ordinal in late_ids, late_ids.get(ordinal))


def history_items(open_stream, change_index=None):
    """Yield the ``value.history[]`` items of one change, reading one message at a time.

    Two passes over the stream, so that keys may come in any order without buffering
    messages: the first reads each item's ``metadata`` and ``errors`` (a declined item is known
    before its threads) and the ``id`` of the threads that give it after their messages; the
    second yields the messages. Memory holds one message, plus one small header per item.

    :param open_stream: callable returning a new binary stream: the delivery body, or the
        change's value when ``change_index`` is ``None``
    :param change_index: flat index of the change among the body's changes (objects in
        ``entry[].changes[]``, as :func:`parse_body` counts them)
    :raises PayloadError: the stream is not JSON (raised before any item is yielded)
    :rtype: Iterator[HistoryItem]
    """
    for _flat, item in _indexed_items(open_stream, change_index):
        yield item


def _indexed_items(open_stream, change_index):
    """:func:`history_items`, each item with its change's flat index (``change_index`` may be
    :data:`ALL_CHANGES`)."""
    headers, parser = _read(open_stream, lambda events: _headers(events, change_index))
    if not headers:
        return
    headers = iter(headers)
    stream = open_stream()
    try:
        events = parser.events(stream)
        for flat in _history_arrays(events, change_index):
            for kind, _first in _items(events):
                if kind != "start_map":
                    _skip(events, kind)
                    continue
                header = next(headers)
                item = HistoryItem(messages=_messages(events, header.late_ids), **header.state)
                yield flat, item
                collections.deque(item.messages, maxlen=0)  # what the caller left unread
    finally:
        _close(stream)


class BodyHistory:
    """The history items of every change of one delivery body, read in the same two passes
    for all of them: a job that imports a delivery's chunks one after the other asks for
    change after change, and :func:`history_items` per change would read the body from its
    start each time (quadratic: 2,500 chunks of one body took minutes).

    Asking for a change at or before one already asked for (a replayed batch), or after a
    read that failed, starts again from the body's start. Same memory bound as
    :func:`history_items`, plus one header per item of the body.

    :param open_stream: callable returning a new binary stream of the delivery body
    """

    def __init__(self, open_stream):
        self._open_stream = open_stream
        self._items = None  # iterator of (flat index, HistoryItem), or None: start again
        self._ahead = None  # the pair read past the change last asked for
        self._asked = -1

    def items(self, change_index):
        """Yield the :class:`HistoryItem` of change ``change_index``, as :func:`history_items`.

        :raises PayloadError: the body is not JSON
        """
        if self._items is None or change_index <= self._asked:
            self._items, self._ahead = _indexed_items(self._open_stream, ALL_CHANGES), None
        self._asked = change_index
        while True:
            pair = self._ahead or self._next()
            self._ahead = None
            if pair is None:
                return
            flat, item = pair
            if flat > change_index:
                self._ahead = pair
                return
            if flat == change_index:
                yield dc_replace(item, messages=self._guarded(item.messages))

    def _next(self):
        try:
            return next(self._items, None)
        except Exception:
            self._items = None  # its stream is left mid-way: the next call starts again
            raise

    def _guarded(self, messages):
        try:
            yield from messages
        except Exception:
            self._items = None
            raise


def batched(iterable, size):
    """Yield lists of up to ``size`` items of ``iterable`` (``itertools.batched`` of 3.12).

    :rtype: Iterator[list]
    """
    iterator = iter(iterable)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
