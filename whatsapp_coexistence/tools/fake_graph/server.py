"""HTTP transport, webhook worker and Python API of the fake Meta Graph API server.

:class:`FakeGraphServer` speaks the WhatsApp Cloud API wire format on ``127.0.0.1`` (stdlib
only), sends signed webhooks to a configured URL, injects faults on demand and exposes a
control API under ``/_fake/`` whose operations are also methods of the server object::

    with FakeGraphServer(port=0, app_secret="s3cret", webhook_url=url) as srv:
        requests.post(srv.url + "/v25.0/106540352242922/messages", ...)
        srv.requests(path_contains="/messages")

Graph endpoints (``/{version}/...``, any ``v<major>.<minor>``; Bearer token except the first):
``GET oauth/access_token``, ``GET debug_token``, ``GET {phone_number_id}``,
``GET {waba_id}``, ``GET {waba_id}/phone_numbers``, ``GET|POST|DELETE
{waba_id}/message_templates``, ``GET|POST|DELETE {waba_id}/subscribed_apps``,
``POST {phone_number_id}/messages``, ``POST {phone_number_id}/media`` (multipart upload,
Meta's type and size limits), ``POST {phone_number_id}/smb_app_data``,
``POST {phone_number_id}/register``; anything else is Meta's code 100/subcode 33.

Control API (no auth, JSON; each is also a method of :class:`FakeGraphServer`):

=======================================  ===================================================
``GET|DELETE /_fake/requests``           recorded requests (``?path_contains=&method=``)
``POST /_fake/reset``                    back to the seed and the construction-time config
``GET|POST|DELETE /_fake/faults``        inject faults (object or list), see :meth:`add_fault`
``GET|POST /_fake/config``               run-time settings, see ``state.DEFAULT_CONFIG``
``POST /_fake/codes``                    Embedded Signup code ``{waba_id, phone_number_id, ttl}``
``POST /_fake/webhook``                  ``{payload|raw, url, secret, signature}``, signed POST
``POST /_fake/inbound``                  ``{phone_number_id, from, text, name, button,
                                         context_id}``: inbound message webhook
``POST /_fake/echo``                     ``{phone_number_id, to, text}``: app echo webhook
``POST /_fake/contacts``                 ``{phone_number_id, phone_number, action, full_name}``
``POST /_fake/account_update``           ``{waba_id, event, ...value}``
``POST /_fake/templates/status``         ``{id | waba_id+name+language, status, reason}``
``POST /_fake/status``                   ``{wamid, status, code}``: one more status webhook
``POST /_fake/verify``                   ``{verify_token, challenge, url}``: GET challenge
``GET /_fake/state``                     seed and state, secrets masked
``GET /_fake/messages``                  accepted sends (``?phone_number_id=``)
``GET /_fake/uploads``                   uploaded media, without their bytes
``GET /_fake/webhook_log``               outcome of every webhook delivery
``GET|POST /_fake/wait``                 wait until scheduled webhooks are delivered
``POST /_fake/media``                    ``{waba_id, mime_type, data|size, media_id, sha256}``
``POST /_fake/inbound_media``            ``{phone_number_id, from, type, mime_type,
                                         data|size, caption, filename}``: media webhook
``POST /_fake/history_media``            ``{phone_number_id, from, wamid, type, ...}``
=======================================  ===================================================

Media: ``GET {media_id}`` answers a download URL under ``/_media/`` that expires after
``media_url_ttl`` seconds and needs the Bearer token of the media's WABA (401 otherwise, 404
once expired). Faults match download paths too (``{"match": {"path": "/_media/"}}``), and
``truncate: N`` sends only N bytes of the file before hanging up.
"""

import contextlib
import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import re
import secrets
import socket
import socketserver
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import uploads
from .media import MEDIA_PATH, MediaStore, history_media_webhook, media_message_webhook
from .state import FakeState
from .wire import (
    DEFAULT_CODE_FOR_STATUS,
    GraphError,
    digits,
    envelope,
    invalid_param,
    mask,
    new_trace_id,
    unsupported,
)

HOST = "127.0.0.1"
_VERSION = re.compile(r"^v\d+\.\d+$")
_JSON = "application/json; charset=UTF-8"
#: Version reported in ``facebook-api-version`` for unversioned calls.
DEFAULT_GRAPH_VERSION = "v25.0"


class _Reply:
    """One HTTP answer (or a dropped connection when ``drop`` is true)."""

    __slots__ = ("body", "content_type", "drop", "headers", "length", "status", "stream")

    def __init__(self, status=200, body=b"", content_type=_JSON, headers=(), drop=False,
                 stream=None, length=None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = list(headers)
        self.drop = drop
        # A media download: ``length`` announced, the bytes written chunk by chunk.
        self.stream = stream
        self.length = length


def _json_reply(status, obj, headers=()):
    # Graph answers compact JSON with \u-escaped unicode, like the webhooks.
    return _Reply(status, json.dumps(obj, separators=(",", ":")).encode(), headers=headers)


class _Scheduler:
    """Delayed jobs run one at a time on a worker thread.

    One worker keeps webhooks in their scheduled order (``sent`` before ``delivered``) and keeps
    API answers from ever waiting on a webhook receiver. It shares the state's lock, so the
    server has a single lock.
    """

    def __init__(self, lock, on_error):
        self._cond = threading.Condition(lock)
        self._heap = []
        self._seq = itertools.count()
        self._busy = 0
        self._stopped = False
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name="fake-graph-webhooks",
                                        daemon=True)
        self._thread.start()

    def schedule(self, delay, fn, *args):
        """Run ``fn(*args)`` on the worker after ``delay`` seconds."""
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), next(self._seq),
                                        fn, args))
            self._cond.notify_all()

    def clear(self):
        """Drop every pending job."""
        with self._cond:
            self._heap = []
            self._cond.notify_all()

    def pending(self):
        """Number of jobs waiting or running."""
        with self._cond:
            return len(self._heap) + self._busy

    def wait_idle(self, timeout):
        """Wait until no job is pending or running; return whether that happened."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._heap and not self._busy, timeout)

    def stop(self):
        """Stop the worker (pending jobs are dropped)."""
        with self._cond:
            self._stopped = True
            self._heap = []
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _run(self):
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            _due, _seq, fn, args = heapq.heappop(self._heap)
                            self._busy += 1
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
            try:
                fn(*args)
            except Exception:  # job boundary: log the failure, keep the worker alive
                self._on_error(traceback.format_exc())
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Idle keep-alive connections and hanging faults must not block stop().
    block_on_close = False
    request_queue_size = 128
    owner = None

    def server_bind(self):
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall on
        # machines without DNS; the fake only ever binds to 127.0.0.1.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        # Clients hanging up (timeouts, drops) are routine here; stay quiet unless asked.
        if self.owner is not None and self.owner.verbose:
            return super().handle_error(request, client_address)
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeGraph/1.0"
    sys_version = ""
    # Without TCP_NODELAY, Nagle plus delayed ACKs cost ~40 ms per keep-alive request.
    disable_nagle_algorithm = True
    timeout = 300  # idle keep-alive connections end after this; stop() ends them at once

    def setup(self):
        result = super().setup()
        self.server.owner._track(self.connection, True)
        return result

    def finish(self):
        try:
            return super().finish()
        finally:
            self.server.owner._track(self.connection, False)

    def log_message(self, fmt, *args):
        if self.server.owner.verbose:
            sys.stderr.write("fake_graph: %s\n" % (fmt % args))

    def do_GET(self):
        self._dispatch()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if not size:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self):
        owner = self.server.owner
        started = time.monotonic()
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            reply = _json_reply(400, GraphError(100, "(#100) Malformed request body").body())
        else:
            reply = owner._handle(self.command, self.path, self.headers, body)
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._send(reply)
        if owner.verbose:
            sys.stderr.write("fake_graph: {} {} -> {} ({:.1f} ms)\n".format(
                self.command, self.path, "dropped" if reply.drop else reply.status,
                (time.monotonic() - started) * 1000))

    def _send(self, reply):
        try:
            phrase = HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = "Unknown"
        length = len(reply.body) if reply.stream is None else reply.length
        lines = [f"{self.protocol_version} {reply.status} {phrase}",
                 "Content-Type: " + reply.content_type,
                 f"Content-Length: {length}",
                 "Date: " + self.date_time_string()]
        lines.extend("{}: {}".format(*item) for item in reply.headers)
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        # One write: headers and body in a single segment keep keep-alive round trips short.
        self.wfile.write(head + reply.body)
        if reply.stream is not None:
            self._send_stream(reply)

    def _send_stream(self, reply):
        sent = 0
        try:
            for chunk in reply.stream:
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:  # the client hung up (a size limit reached): routine
            self.close_connection = True
            return
        if sent != reply.length:  # a truncated download: hang up so the client notices
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)


def _maybe_json(value):
    if value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _mask_auth(value):
    scheme, _, token = (value or "").partition(" ")
    if not token:
        return mask(scheme)
    return f"{scheme} {mask(token.strip())}"


def _field_of(payload):
    try:
        return payload["entry"][0]["changes"][0]["field"]
    except (KeyError, IndexError, TypeError):
        return None


class FakeGraphServer:
    """A local fake of Meta's Graph API for WhatsApp Cloud API (coexistence) clients.

    :param int port: TCP port on 127.0.0.1; ``0`` picks a free one (see :attr:`url`).
    :param str app_secret: Meta app secret (signs webhooks, checked by the code exchange);
        overrides the seed's.
    :param seed: ``None`` for the demo seed (``seed_demo.json``), a dict or a JSON file path.
    :param str app_id: overrides the seed's app id.
    :param str webhook_url: where webhooks are POSTed (``config["webhook_url"]``).
    :param bool verbose: log each request and webhook to stderr.
    :param config: any other :data:`~.state.DEFAULT_CONFIG` key, e.g. ``status_delay=0``.
    """

    def __init__(self, port=0, app_secret=None, seed=None, app_id=None, webhook_url=None,
                 verbose=False, **config):
        if webhook_url is not None:
            config["webhook_url"] = webhook_url
        self.state = FakeState(seed, app_id=app_id, app_secret=app_secret, config=config)
        self.media = MediaStore()
        self.port = int(port)
        self.verbose = verbose
        self._httpd = None
        self._thread = None
        self._scheduler = None
        self._stopping = threading.Event()
        self._conns = set()
        # Webhook targets are local; never route them through an environment proxy.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self):
        """Base URL, e.g. ``http://127.0.0.1:54321`` (the port is known after :meth:`start`)."""
        return f"http://{HOST}:{self.port}"

    @property
    def app_id(self):
        """The configured Meta app id."""
        return self.state.app["app_id"]

    @property
    def app_secret(self):
        """The configured Meta app secret."""
        return self.state.app["app_secret"]

    def start(self):
        """Bind to 127.0.0.1 and serve in a background thread.

        :return: ``self``.
        """
        if self._httpd is not None:
            raise RuntimeError("already started")
        self._stopping.clear()
        httpd = _HTTPServer((HOST, self.port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._scheduler = _Scheduler(self.state.lock, self._job_failed)
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-graph-http", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving, close open connections, end hanging faults and the webhook worker."""
        httpd = self._httpd
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self.state.lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._scheduler.stop()
        self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _track(self, conn, opened):
        with self.state.lock:
            if opened:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # -- Python control API ---------------------------------------------------------------

    def requests(self, path_contains=None, method=None):
        """Recorded Graph requests, oldest first.

        Each is ``{method, path, version, query, json, headers, time, status}`` (plus
        ``fault`` when one applied); ``Authorization`` is masked to ``Bearer …<last4>``.

        :param str path_contains: keep requests whose path contains this substring.
        :param str method: keep requests with this HTTP method.
        :rtype: list
        """
        return self.state.list_requests(path_contains, method)

    def clear_requests(self):
        """Forget the recorded requests."""
        self.state.clear_requests()

    def reset(self):
        """Restore the seed and construction-time config; drop pending webhooks."""
        if self._scheduler is not None:
            self._scheduler.clear()
        self.state.reset()
        self.media.reset()

    def add_fault(self, fault=None, **kwargs):
        """Inject a fault (or a list of them) for the next matching Graph requests.

        Keys: ``match`` (``{"method", "path"}``, path is a substring), ``times`` (default 1,
        ``None`` = forever), ``status``, ``code``, ``subcode``, ``message``, ``details``,
        ``type``, ``latency`` (s), ``timeout`` (hang ``hang`` s, default 30, then drop),
        ``drop`` (close without answer), ``body`` (raw body) with ``content_type``,
        ``headers`` (extra ``[name, value]`` pairs) and ``processed`` (run the request's side
        effects first, then fail its answer: an accepted send whose answer is lost).
        Faults are consumed in the order added.

        :return: the ids of the added faults.
        :rtype: list
        """
        if fault is None:
            fault = kwargs
        elif kwargs:
            fault = dict(fault, **kwargs)
        return self.state.add_faults(fault)

    def clear_faults(self):
        """Remove every fault."""
        self.state.clear_faults()

    def faults(self):
        """The faults not consumed yet.

        :rtype: list
        """
        return self.state.list_faults()

    def configure(self, **values):
        """Change run-time settings (see :data:`~.state.DEFAULT_CONFIG`); return the config.

        :rtype: dict
        """
        return self.state.configure(values)

    @property
    def config(self):
        """A copy of the current config."""
        return self.state.configure({})

    def issue_code(self, waba_id=None, phone_number_id=None, ttl=None):
        """Issue a single-use Embedded Signup code (what FB.login would hand the browser).

        :return: ``{"code", "waba_id", "phone_number_id", "expires_in"}``.
        :rtype: dict
        """
        return self.state.issue_code(waba_id, phone_number_id, ttl)

    def serialise(self, payload):
        """Encode a webhook payload the way Meta does: compact JSON, ``\\u``-escaped unicode.

        :rtype: bytes
        """
        with self.state.lock:
            ensure_ascii = self.state.config["ensure_ascii"]
            slashes = self.state.config["escape_slashes"]
        text = json.dumps(payload, ensure_ascii=ensure_ascii, separators=(",", ":"))
        if slashes:
            # "/" never occurs outside strings in JSON, so this is a valid re-encoding.
            text = text.replace("/", "\\/")
        return text.encode("utf-8")

    def deliver_webhook(self, payload_or_bytes, url=None, secret=None, signature=None):
        """POST a webhook, signed like Meta, and return the receiver's answer.

        :param payload_or_bytes: a dict (serialised by :meth:`serialise`) or raw bytes/str
            sent as is.
        :param str url: target; defaults to ``config["webhook_url"]``.
        :param str secret: HMAC key; defaults to the app secret.
        :param str signature: ``X-Hub-Signature-256`` value to send instead of the real one
            (``""`` sends no signature headers at all).
        :return: ``(status, body)``; ``status`` is ``None`` when the target was unreachable.
        :rtype: tuple
        """
        if isinstance(payload_or_bytes, (bytes, bytearray, str)):
            data = payload_or_bytes
            data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
            try:
                field = _field_of(json.loads(data))
            except ValueError:
                field = None
        else:
            data, field = self.serialise(payload_or_bytes), _field_of(payload_or_bytes)
        with self.state.lock:
            url = url or self.state.config["webhook_url"]
            secret = self.state.app["app_secret"] if secret is None else secret
            timeout = float(self.state.config["webhook_timeout"])
        if not url:
            raise ValueError("no webhook URL: configure webhook_url or pass url")
        headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
        if signature is None:
            key = secret.encode("utf-8")
            headers["X-Hub-Signature"] = "sha1=" + hmac.new(key, data, hashlib.sha1).hexdigest()
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(
                key, data, hashlib.sha256).hexdigest()
        elif signature:
            headers["X-Hub-Signature-256"] = signature
        started = time.time()
        status, text, error = self._http("POST", url, data, headers, timeout)
        entry = {"time": started, "url": url, "field": field, "size": len(data),
                 "status": status, "duration": round(time.time() - started, 4)}
        if error:
            entry["error"] = error
        if status is not None and status >= 300:
            entry["body"] = text[:500]
        self.state.log_webhook(entry)
        if self.verbose:
            sys.stderr.write(f"fake_graph: webhook {field} -> {url} {status or error}\n")
        return status, (text if error is None else error)

    def verify_webhook(self, verify_token, challenge=None, url=None):
        """Send Meta's verification GET (``hub.mode=subscribe``) to the webhook URL.

        :return: ``(status, body)``; a correct endpoint answers 200 with the challenge.
        :rtype: tuple
        """
        url = url or self.state.cfg("webhook_url")
        if not url:
            raise ValueError("no webhook URL: configure webhook_url or pass url")
        challenge = challenge or str(secrets.randbelow(10**9))
        query = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.challenge": challenge,
                                        "hub.verify_token": verify_token or ""})
        sep = "&" if "?" in url else "?"
        status, text, error = self._http("GET", url + sep + query, None, {},
                                         float(self.state.cfg("webhook_timeout")))
        return status, (text if error is None else error)

    def send_inbound(self, phone_number_id, sender, text=None, name=None, button=None,
                     context_id=None, url=None):
        """Deliver a §2.1 inbound message from ``sender`` (now, synchronously).

        :param dict button: ``{"payload", "text"}`` to simulate a template quick-reply tap.
        :param str context_id: wamid the user replied to.
        :return: ``{"status", "body", "wamid", "payload"}``.
        :rtype: dict
        """
        waba_id, wamid, payload = self.state.inbound_webhook(
            phone_number_id, sender, text, name, button, context_id)
        return self._deliver_now(waba_id, wamid, payload, url)

    def send_echo(self, phone_number_id, to, text, url=None):
        """Deliver a §2.5 ``smb_message_echoes`` webhook (a reply typed in the phone app).

        :rtype: dict
        """
        waba_id, wamid, payload = self.state.echo_webhook(phone_number_id, to, text)
        return self._deliver_now(waba_id, wamid, payload, url)

    def send_contact_update(self, phone_number_id, phone_number, action="add", full_name=None,
                            first_name=None, url=None):
        """Deliver a §2.4 address-book change (``add`` or ``remove``).

        :rtype: dict
        """
        waba_id, payload = self.state.contact_webhook(phone_number_id, phone_number, action,
                                                      full_name, first_name)
        return self._deliver_now(waba_id, None, payload, url)

    def send_account_update(self, waba_id, event, url=None, **value):
        """Deliver a §2.6 ``account_update`` (e.g. ``PARTNER_REMOVED``, ``ACCOUNT_OFFBOARDED``).

        :param value: extra ``value`` keys such as ``phone_number`` or ``disconnection_info``.
        :rtype: dict
        """
        payload = envelope(str(waba_id), "account_update", dict(value, event=event),
                           with_time=True)
        return self._deliver_now(str(waba_id), None, payload, url)

    def add_token(self, token, waba_ids):
        """Issue a new token for ``waba_ids``; see :meth:`FakeState.add_token`."""
        self.state.add_token(token, waba_ids)

    def set_token(self, token, expires_at=None, revoked=None):
        """Give a token an expiry or revoke it; see :meth:`FakeState.set_token`."""
        self.state.set_token(token, expires_at=expires_at, revoked=revoked)

    def set_phone(self, phone_number_id, **values):
        """Change a phone number's ``status``, ``quality_rating``...; no webhook is sent.

        :rtype: dict
        """
        return self.state.set_phone(phone_number_id, **values)

    def add_phone(self, waba_id, phone_number_id, display_phone_number, **values):
        """Add a second number to a WABA (the business is changing its number); see
        :meth:`FakeState.add_phone`.

        :rtype: dict
        """
        return self.state.add_phone(waba_id, phone_number_id, display_phone_number, **values)

    def send_number_change(self, phone_number_id, old_wa_id, new_wa_id, name=None, url=None):
        """Deliver a customer's ``user_changed_number`` system message to a business number.

        :rtype: dict
        """
        waba_id, wamid, payload = self.state.number_change_webhook(
            phone_number_id, old_wa_id, new_wa_id, name)
        return self._deliver_now(waba_id, wamid, payload, url)

    def send_phone_event(self, phone_number_id, field, url=None, **value):
        """Deliver ``phone_number_quality_update`` (``event``, ``current_limit``) or
        ``phone_number_name_update`` (``decision``, ``requested_verified_name``) for a number.

        :rtype: dict
        """
        waba_id, payload = self.state.phone_event_webhook(phone_number_id, field, value)
        return self._deliver_now(waba_id, None, payload, url)

    def set_template_status(self, template_id, status, reason="NONE", webhook=True):
        """Change a template's status and (by default) send the §2.7 status webhook.

        :return: the template.
        :rtype: dict
        """
        waba_id, tpl = self.state.set_template_status(template_id, status)
        if webhook:
            self._deliver_for_waba(waba_id, self.state.template_status_webhook(
                waba_id, tpl, reason))
        tpl.pop("waba_id", None)
        return tpl

    def send_status(self, wamid, status, code=None, url=None):
        """Deliver one more status webhook for a sent message (e.g. ``read``, or ``failed``
        with error ``code``).

        :rtype: dict
        """
        waba_id, payload = self.state.status_webhook(wamid, status, code)
        if payload is None:
            raise KeyError(f"unknown wamid {wamid}")
        return self._deliver_now(waba_id, wamid, payload, url)

    def messages(self, phone_number_id=None):
        """Messages accepted by ``POST /{phone_number_id}/messages``, oldest first.

        :rtype: list
        """
        return self.state.list_messages(phone_number_id)

    def uploads(self):
        """Uploaded media, oldest first, without their bytes (see :meth:`upload`).

        :rtype: list
        """
        with self.state.lock:
            items = list(self.state.uploads.values())
        return [dict(uploads.summary(item), id=item["id"], kind=item["kind"],
                     phone_number_id=item["phone_number_id"]) for item in items]

    def upload(self, media_id):
        """One uploaded file with its bytes (``content``), or ``None``.

        :rtype: dict | None
        """
        return self.state.upload(media_id)

    def webhook_log(self):
        """Outcome of every webhook delivery (``status`` ``None`` + ``error`` on failure).

        :rtype: list
        """
        with self.state.lock:
            return list(self.state.webhook_log)

    def snapshot(self):
        """The whole state (``GET /_fake/state``), secrets masked.

        :rtype: dict
        """
        return self.state.snapshot()

    def wait_webhooks(self, timeout=5.0):
        """Wait until every scheduled webhook has been delivered.

        :return: whether the queue drained within ``timeout``.
        :rtype: bool
        """
        if self._scheduler is None:
            return True
        return self._scheduler.wait_idle(timeout)

    # -- webhook plumbing -------------------------------------------------------------------

    def _http(self, method, url, data, headers, timeout):
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(req, timeout=timeout) as resp:
                return resp.status, resp.read(1 << 20).decode("utf-8", "replace"), None
        except urllib.error.HTTPError as err:
            try:
                text = err.read(1 << 20).decode("utf-8", "replace")
            except OSError:
                text = ""
            return err.code, text, None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as err:
            return None, "", str(getattr(err, "reason", err))

    def _deliver_now(self, waba_id, wamid, payload, url):
        url = url or self.state.webhook_target(waba_id)
        status, body = self.deliver_webhook(payload, url=url)
        return {"status": status, "body": body, "wamid": wamid, "payload": payload}

    def _deliver_for_waba(self, waba_id, payload, attempt=0):
        url = self.state.webhook_target(waba_id)
        if not url:
            self.state.log_webhook({"time": time.time(), "url": None,
                                    "field": _field_of(payload), "status": None,
                                    "error": f"skipped: no webhook target for WABA {waba_id}"})
            return
        # Serialise once: retries and duplicates repeat the very same bytes and signature.
        data = payload if isinstance(payload, bytes) else self.serialise(payload)
        with self.state.lock:
            retries = int(self.state.config["webhook_retries"])
            retry_delay = float(self.state.config["webhook_retry_delay"])
            duplicate = self.state.config["webhook_duplicates"]
        status, _body = self.deliver_webhook(data, url=url)
        if duplicate:
            # Meta: retries to every subscribed app "can result in duplicate notifications".
            self.deliver_webhook(data, url=url)
        if status != 200 and attempt < retries:
            # Meta retries non-200 answers "with decreasing frequency" (§1.2).
            self._schedule(retry_delay * 2**attempt, self._deliver_for_waba, waba_id, data,
                           attempt + 1)

    def _job_failed(self, text):
        self.state.log_webhook({"time": time.time(), "url": None, "field": None,
                                "status": None, "error": text})

    def _schedule(self, delay, fn, *args):
        gen = self.state.generation

        def job():
            # A reset in between makes the job stale: its message/template no longer exists.
            if self.state.generation == gen:
                fn(*args)

        self._scheduler.schedule(delay, job)

    def _job_status(self, wamid, status, code):
        waba_id, payload = self.state.status_webhook(wamid, status, code)
        if payload is not None:
            self._deliver_for_waba(waba_id, payload)

    def _job_approve(self, template_id):
        with self.state.lock:
            tpl = self.state.templates.get(template_id)
            if tpl is None or tpl["status"] != "PENDING":
                return
        self.set_template_status(template_id, "APPROVED")

    # -- request handling -------------------------------------------------------------------

    def _handle(self, method, raw_path, headers, body):
        split = urllib.parse.urlsplit(raw_path)
        path = split.path or "/"
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        if path == "/_fake" or path.startswith("/_fake/"):
            return self._control(method, path, query, body)
        if path.startswith(MEDIA_PATH):
            return self._media_download(method, path, query, headers)
        return self._graph(method, path, query, headers, body)

    def _graph(self, method, path, query, headers, body):
        started = time.time()
        data, bad_body = None, False
        if body:
            ctype = headers.get("Content-Type") or ""
            text = body.decode("utf-8", "replace")
            if "x-www-form-urlencoded" in ctype:
                data = {k: _maybe_json(v)
                        for k, v in urllib.parse.parse_qsl(text, keep_blank_values=True)}
            elif "multipart/form-data" in ctype:
                data, bad_body = self._multipart(ctype, body)
            else:
                try:
                    data = json.loads(text)
                except ValueError:
                    bad_body = True
        fault = self.state.take_fault(method, path)
        delay = float(self.state.cfg("latency")) + (fault["latency"] if fault else 0.0)
        if delay > 0:
            self._stopping.wait(delay)
        reply = None
        if fault and not fault.get("processed"):
            reply = self._fault_reply(fault, path)
        if reply is None:
            reply = self._answer(method, path, query, headers, data, bad_body)
            if fault and fault.get("processed"):
                reply = self._fault_reply(fault, path) or reply
        rec_headers = dict(headers.items())
        for name in list(rec_headers):
            if name.lower() == "authorization":
                rec_headers[name] = _mask_auth(rec_headers[name])
        rec_query = dict(query)
        if "access_token" in rec_query:
            rec_query["access_token"] = mask(rec_query["access_token"])
        segs = [s for s in path.split("/") if s]
        record = {"method": method, "path": path,
                  "version": segs[0] if segs and _VERSION.match(segs[0]) else None,
                  "query": rec_query, "json": uploads.loggable(data), "headers": rec_headers,
                  "time": started,
                  "status": None if reply.drop else reply.status}
        if bad_body:
            record["body"] = body[:2000].decode("utf-8", "replace")
        if fault:
            record["fault"] = fault["id"]
        self.state.record(record)
        return reply

    @staticmethod
    def _multipart(ctype, body):
        """``(form data, bad_body)`` of a multipart body; files stay under ``"_files"``."""
        try:
            fields, files = uploads.parse_multipart(ctype, body)
        except (GraphError, ValueError):
            return None, True
        return dict(fields, _files=files), False

    def _fault_reply(self, fault, path):
        if fault.get("timeout"):
            # Interrupted by stop() so a test teardown never waits for the full hang.
            self._stopping.wait(fault["hang"])
            return _Reply(drop=True)
        if fault.get("drop"):
            return _Reply(drop=True)
        extra = fault.get("headers") or []
        extra = [tuple(h) for h in (extra.items() if isinstance(extra, dict) else extra)]
        if fault.get("body") is not None:
            raw = fault["body"]
            raw = raw.encode("utf-8") if isinstance(raw, str) else json.dumps(raw).encode()
            return _Reply(int(fault.get("status") or 500), raw,
                          fault.get("content_type") or "text/html; charset=utf-8", extra)
        if fault.get("code") is None and fault.get("status") is None:
            return None  # latency-only fault: answer normally
        status = fault.get("status")
        code = fault.get("code")
        if code is None:
            code = DEFAULT_CODE_FOR_STATUS.get(int(status), 1)
        err = GraphError(code, fault.get("message"), subcode=fault.get("subcode"),
                         status=status, details=fault.get("details"), type=fault.get("type"))
        return _json_reply(err.status, err.body(), self._meta_headers(path) + extra)

    def _meta_headers(self, path):
        segs = [s for s in path.split("/") if s]
        version = segs[0] if segs and _VERSION.match(segs[0]) else DEFAULT_GRAPH_VERSION
        return [("x-fb-trace-id", new_trace_id()), ("facebook-api-version", version)]

    def _answer(self, method, path, query, headers, data, bad_body):
        extra = self._meta_headers(path)
        try:
            if bad_body:
                raise invalid_param("The request body is not valid JSON")
            obj = self._route(method, path, query, headers, data)
            return _json_reply(200, obj, extra)
        except GraphError as err:
            if err.code == 190:
                challenge = f'OAuth "Facebook Platform" "invalid_token" "{err.message}"'
                extra.append(("WWW-Authenticate", challenge))
            return _json_reply(err.status, err.body(), extra)
        except Exception:  # request boundary: odd input still gets a Meta-shaped 500
            if self.verbose:
                traceback.print_exc()
            err = GraphError(1, status=500)
            return _json_reply(err.status, err.body(), extra)

    def _route(self, method, path, query, headers, data):
        segs = [s for s in path.split("/") if s]
        if segs and _VERSION.match(segs[0]):
            segs = segs[1:]
        params = dict(query)
        if isinstance(data, dict):
            params.update(data)
        st = self.state
        if segs == ["oauth", "access_token"] and method in ("GET", "POST"):
            return st.exchange_code(params.get("client_id"), params.get("client_secret"),
                                    params.get("code"))
        auth = headers.get("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        token = value.strip() if scheme.lower() in ("bearer", "oauth") else None
        token = token or query.get("access_token")
        if segs == ["debug_token"] and method == "GET":
            if token != "{}|{}".format(st.app["app_id"], st.app["app_secret"]):
                st.authenticate(token)
            return st.debug_token(params.get("input_token"))
        entry = st.authenticate(token)
        if not segs or len(segs) > 2:
            raise unsupported(method, segs[0] if segs else "")
        node_id, edge = segs[0], (segs[1] if len(segs) > 1 else None)
        if edge is None and method == "GET" and self.media.get(node_id):
            return self._media_get(entry, node_id)
        kind, _record = st.node(node_id)
        if kind is None:
            raise unsupported(method, node_id)
        node = st.require(entry, node_id, kind, method)
        if edge is None:
            if method != "GET":
                raise unsupported(method, node_id)
            if kind == "phone":
                return st.phone_view(node, params.get("fields"))
            if kind == "waba":
                return st.waba_view(node, params.get("fields"))
            return st.template_view(node, [f.strip() for f in (
                params.get("fields") or "name,language,status,category,components,id").split(",")])
        handler = getattr(self, f"_{kind}_{edge}_{method.lower()}", None)
        if handler is None:
            raise unsupported(method, node_id)
        return handler(node, params, data, path, headers)

    # Graph edges, named _<node kind>_<edge>_<method>.

    def _phone_messages_post(self, phone, params, data, path, headers):
        response, record = self.state.send_message(phone, data)
        if record["plan"] and self.state.webhook_target(phone["waba_id"]):
            delay = float(self.state.cfg("status_delay"))
            for i, (status, code) in enumerate(record["plan"], start=1):
                self._schedule(delay * i, self._job_status, record["wamid"], status, code)
        return response

    def _phone_media_post(self, phone, params, data, path, headers):
        fields = {k: v for k, v in (data or {}).items() if k != "_files"}
        kind, upload = uploads.check_upload(fields, (data or {}).get("_files") or {})
        return self.state.store_upload(phone, kind, upload)

    def _phone_smb_app_data_post(self, phone, params, data, path, headers):
        response, sync_type = self.state.request_sync(phone, data)
        if sync_type == "history":
            payloads = self.state.history_webhooks(phone)
        else:
            payloads = self.state.contacts_webhooks(phone)
        delay = float(self.state.cfg("history_delay"))
        for i, payload in enumerate(payloads, start=1):
            self._schedule(delay * i, self._deliver_for_waba, phone["waba_id"], payload)
        return response

    def _phone_register_post(self, phone, params, data, path, headers):
        return self.state.register(phone, params)

    def _waba_phone_numbers_get(self, waba, params, data, path, headers):
        return self.state.phone_numbers(waba, params.get("fields"))

    def _waba_message_templates_get(self, waba, params, data, path, headers):
        host = headers.get("Host") or f"{HOST}:{self.port}"
        base = f"http://{host}{path}"
        return self.state.list_templates(waba, params, base)

    def _waba_message_templates_post(self, waba, params, data, path, headers):
        result = self.state.create_template(waba, params)
        if self.state.cfg("auto_approve_templates"):
            self._schedule(float(self.state.cfg("template_approve_delay")), self._job_approve,
                           result["id"])
        return result

    def _waba_message_templates_delete(self, waba, params, data, path, headers):
        if not params.get("name"):
            raise invalid_param("name is required", "(#100) The parameter name is required.")
        return self.state.delete_template(waba, params["name"], params.get("hsm_id"))

    def _waba_subscribed_apps_get(self, waba, params, data, path, headers):
        return self.state.subscriptions(waba)

    def _waba_subscribed_apps_post(self, waba, params, data, path, headers):
        uri = params.get("override_callback_uri")
        if uri and params.get("verify_token") and self.state.cfg("verify_callback"):
            # Meta checks an override URL with the GET challenge before accepting it (§1.1).
            challenge = str(secrets.randbelow(10**9))
            status, body = self.verify_webhook(params["verify_token"], challenge, uri)
            if status != 200 or (body or "").strip() != challenge:
                raise GraphError(2200, "(#2200) Callback verification failed with the "
                                 f"following errors: HTTP Status Code = {status}; "
                                 f"HTTP Message = {(body or '')[:200]}")
        return self.state.subscribe(waba, params)

    def _waba_subscribed_apps_delete(self, waba, params, data, path, headers):
        return self.state.unsubscribe(waba)

    # -- control API ----------------------------------------------------------------------

    def _control(self, method, path, query, body):
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return _json_reply(400, {"error": "request body is not valid JSON"})
        name = path[len("/_fake"):].strip("/")
        handler = getattr(self, "_ctl_{}_{}".format(name.replace("/", "_"), method.lower()), None)
        if handler is None:
            return _json_reply(404, {"error": f"unknown control endpoint {method} {path}",
                                     "endpoints": self._ctl__get(query, data)["endpoints"]})
        try:
            return _json_reply(200, handler(query, data))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            return _json_reply(400, {"error": f"{type(err).__name__}: {err}"})

    def _ctl__get(self, query, data):
        return {"endpoints": [
            "GET|DELETE /_fake/requests", "POST /_fake/reset", "GET|POST|DELETE /_fake/faults",
            "GET|POST /_fake/config", "POST /_fake/codes", "POST /_fake/webhook",
            "POST /_fake/inbound", "POST /_fake/echo", "POST /_fake/contacts",
            "POST /_fake/account_update", "POST /_fake/templates/status", "POST /_fake/status",
            "POST /_fake/verify", "GET /_fake/state", "GET /_fake/messages",
            "GET /_fake/webhook_log", "POST /_fake/wait", "POST /_fake/media",
            "POST /_fake/inbound_media", "POST /_fake/history_media"]}

    def _ctl_requests_get(self, query, data):
        return self.requests(query.get("path_contains"), query.get("method"))

    def _ctl_requests_delete(self, query, data):
        self.clear_requests()
        return {"success": True}

    def _ctl_reset_post(self, query, data):
        self.reset()
        return {"success": True}

    def _ctl_faults_get(self, query, data):
        return self.faults()

    def _ctl_faults_post(self, query, data):
        return {"ids": self.add_fault(data)}

    def _ctl_faults_delete(self, query, data):
        self.clear_faults()
        return {"success": True}

    def _ctl_config_get(self, query, data):
        return self.config

    def _ctl_config_post(self, query, data):
        return self.configure(**data)

    def _ctl_codes_post(self, query, data):
        return self.issue_code(data.get("waba_id"), data.get("phone_number_id"),
                               data.get("ttl"))

    def _ctl_webhook_post(self, query, data):
        if "raw" in data:
            payload = data["raw"]
        elif "payload" in data:
            payload = data["payload"]
        else:
            raise ValueError('give "payload" (an object) or "raw" (a string)')
        status, body = self.deliver_webhook(payload, data.get("url"), data.get("secret"),
                                            data.get("signature"))
        return {"status": status, "body": body}

    def _ctl_inbound_post(self, query, data):
        return self.send_inbound(data["phone_number_id"], data["from"], data.get("text"),
                                 data.get("name"), data.get("button"), data.get("context_id"),
                                 data.get("url"))

    def _ctl_echo_post(self, query, data):
        return self.send_echo(data["phone_number_id"], data["to"], data.get("text"),
                              data.get("url"))

    def _ctl_contacts_post(self, query, data):
        return self.send_contact_update(data["phone_number_id"], data["phone_number"],
                                        data.get("action", "add"), data.get("full_name"),
                                        data.get("first_name"), data.get("url"))

    def _ctl_account_update_post(self, query, data):
        extra = {k: v for k, v in data.items() if k not in ("waba_id", "event", "url")}
        return self.send_account_update(data["waba_id"], data["event"], data.get("url"),
                                        **extra)

    def _ctl_templates_status_post(self, query, data):
        template_id = data.get("id") or self.state.find_template(
            data.get("waba_id"), data.get("name"), data.get("language"))
        return self.set_template_status(template_id, data["status"], data.get("reason", "NONE"),
                                        data.get("webhook", True))

    def _ctl_status_post(self, query, data):
        return self.send_status(data["wamid"], data["status"], data.get("code"),
                                data.get("url"))

    def _ctl_verify_post(self, query, data):
        status, body = self.verify_webhook(data.get("verify_token"), data.get("challenge"),
                                           data.get("url"))
        return {"status": status, "body": body}

    def _ctl_state_get(self, query, data):
        return self.snapshot()

    def _ctl_messages_get(self, query, data):
        return self.messages(query.get("phone_number_id"))

    def _ctl_uploads_get(self, query, data):
        return self.uploads()

    def _ctl_webhook_log_get(self, query, data):
        return self.webhook_log()

    def _ctl_wait_post(self, query, data):
        return {"idle": self.wait_webhooks(float(data.get("timeout", 5.0)))}

    _ctl_wait_get = _ctl_wait_post

    # -- media retrieval (inbound media) ---------------------------------------------------

    def add_media(self, waba_id, mime_type, data=None, size=None, media_id=None, sha256=None):
        """Store a media of ``waba_id`` (bytes, or ``size`` generated bytes).

        :param str sha256: announce this digest instead of the file's (a corrupt download)
        :return: ``{id, waba_id, mime_type, size, sha256}``
        :rtype: dict
        """
        item = self.media.add(waba_id, mime_type, data=data, size=size, media_id=media_id,
                              sha256=sha256)
        return {k: v for k, v in item.items() if k != "data"}

    def send_media(self, phone_number_id, sender, media_type, mime_type, data=None, size=None,
                   caption=None, filename=None, name=None, media_id=None, url=None):
        """Deliver a signed inbound media message (image, document, audio, video, sticker).

        The media is stored first (unless ``media_id`` names a stored one), so the receiver
        can fetch it with ``GET /<MEDIA_ID>``.

        :return: ``{"status", "body", "wamid", "payload", "media"}``
        :rtype: dict
        """
        with self.state.lock:
            phone = self.state.phones[str(phone_number_id)]
        item = self.media.get(media_id) if media_id else None
        item = item or self.media.add(phone["waba_id"], mime_type, data=data, size=size,
                                      media_id=media_id)
        wamid, payload = media_message_webhook(phone, sender, media_type, item, caption,
                                               filename, name)
        result = self._deliver_now(phone["waba_id"], wamid, payload, url)
        result["media"] = {k: v for k, v in item.items() if k != "data"}
        return result

    def send_history_media(self, phone_number_id, sender, wamid, media_type, mime_type,
                           data=None, size=None, caption=None, filename=None, url=None):
        """Deliver the ``history`` follow-up carrying the media of placeholder ``wamid``.

        :return: ``{"status", "body", "wamid", "payload", "media"}``
        :rtype: dict
        """
        with self.state.lock:
            phone = self.state.phones[str(phone_number_id)]
        item = self.media.add(phone["waba_id"], mime_type, data=data, size=size)
        payload = history_media_webhook(phone, sender, wamid, media_type, item, caption,
                                        filename)
        result = self._deliver_now(phone["waba_id"], wamid, payload, url)
        result["media"] = {k: v for k, v in item.items() if k != "data"}
        return result

    def _media_get(self, token_entry, media_id):
        item = self.media.get(media_id)
        if not self.state.allowed(token_entry, item["waba_id"]):
            # Meta does not tell another business that the id exists.
            raise unsupported("GET", media_id)
        ttl = float(self.state.cfg("media_url_ttl"))
        return {"messaging_product": "whatsapp", "url": self.media.link(self.url, media_id, ttl),
                "mime_type": item["mime_type"], "sha256": item["sha256"],
                "file_size": item["size"], "id": media_id}

    def _media_download(self, method, path, query, headers):
        """``GET /_media/<id>?ext&hash``: the file, for the Bearer token of its WABA only."""
        media_id = path[len(MEDIA_PATH):].strip("/")
        fault = self.state.take_fault(method, path)
        reply = self._media_reply(method, media_id, query, headers, fault)
        rec_headers = {k: (_mask_auth(v) if k.lower() == "authorization" else v)
                       for k, v in headers.items()}
        record = {"method": method, "path": path, "version": None, "query": {}, "json": None,
                  "headers": rec_headers, "time": time.time(),
                  "status": None if reply.drop else reply.status}
        if fault:
            record["fault"] = fault["id"]
        self.state.record(record)
        return reply

    def _media_reply(self, method, media_id, query, headers, fault):
        if fault:
            if fault.get("latency"):
                self._stopping.wait(fault["latency"])
            reply = self._fault_reply(fault, MEDIA_PATH)
            if reply is not None:
                return reply
        item = self.media.get(media_id)
        if method != "GET" or item is None or self.media.check_link(media_id, query):
            # Meta's CDN answers an expired or forged link with a bare 404.
            return _Reply(404, b"Not Found", "text/plain")
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        try:
            entry = self.state.authenticate(token.strip() if scheme.lower() == "bearer" else None)
        except GraphError:
            entry = None
        if entry is None or not self.state.allowed(entry, item["waba_id"]):
            return _Reply(401, b"Unauthorized", "text/plain")
        limit = int(fault["truncate"]) if fault and fault.get("truncate") is not None else None
        return _Reply(200, b"", item["mime_type"], stream=self.media.chunks(item, limit),
                      length=item["size"])

    def _ctl_media_post(self, query, data):
        raw = data.get("data")
        return self.add_media(data["waba_id"], data["mime_type"],
                              raw.encode() if isinstance(raw, str) else None, data.get("size"),
                              data.get("media_id"), data.get("sha256"))

    def _ctl_inbound_media_post(self, query, data):
        raw = data.get("data")
        return self.send_media(data["phone_number_id"], data["from"], data["type"],
                               data["mime_type"], raw.encode() if isinstance(raw, str) else None,
                               data.get("size"), data.get("caption"), data.get("filename"),
                               data.get("name"), data.get("media_id"), data.get("url"))

    def _ctl_history_media_post(self, query, data):
        raw = data.get("data")
        return self.send_history_media(data["phone_number_id"], data["from"], data["wamid"],
                                       data["type"], data["mime_type"],
                                       raw.encode() if isinstance(raw, str) else None,
                                       data.get("size"), data.get("caption"),
                                       data.get("filename"), data.get("url"))


def seeded_tokens(srv):
    """Return ``[(waba_id, waba name, phone ids, masked token)]`` for the CLI banner.

    :rtype: list
    """
    out = []
    with srv.state.lock:
        for token in srv.state.tokens.values():
            for waba_id in sorted(token["waba_ids"]):
                waba = srv.state.wabas.get(waba_id, {})
                phones = [
                    "{} ({})".format(p, digits(srv.state.phones[p]["display_phone_number"]))
                    for p in waba.get("phone_ids", [])]
                out.append((waba_id, waba.get("name", ""), phones, mask(token["token"])))
    return out
