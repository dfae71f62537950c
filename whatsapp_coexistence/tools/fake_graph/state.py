"""State, behaviour and wire formats of the fake Meta Graph API (WhatsApp Cloud API).

Everything here is plain data guarded by one lock (:attr:`FakeState.lock`); :mod:`.server` adds the
HTTP transport, the webhook worker and the public :class:`~.server.FakeGraphServer` API.

Wire formats follow ``shared/reference/meta-whatsapp-coexistence.md`` (§1 webhooks, §2 payloads,
§3.3/§3.4 onboarding, §4.1 send, §4.2 error codes).
"""

import base64
import copy
import hashlib
import json
import os
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from typing import NamedTuple
from urllib.parse import urlencode

SEED_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed_demo.json")

#: Settings changeable at run time (``POST /_fake/config``); unknown keys are rejected so that a
#: typo in a test does not silently keep the default.
DEFAULT_CONFIG = {
    "latency": 0.0,  # seconds added before every Graph answer
    "webhook_url": None,  # where webhooks go (a WABA's override_callback_uri wins)
    "status_sequence": ["sent", "delivered"],  # strings or {"status": "failed", "code": 131026}
    "status_delay": 0.05,  # seconds between a send and each following status webhook
    "auto_approve_templates": True,
    "template_approve_delay": 0.2,
    "code_ttl": 30.0,  # Embedded Signup code lifetime (Meta: 30 s, §3.3)
    "history_delay": 0.05,  # seconds between smb_app_data and each sync webhook
    "history_chunk_threads": 1,  # threads per history webhook
    "contacts_chunk_size": 100,  # contacts per smb_app_state_sync webhook
    "webhook_timeout": 10.0,
    "webhook_retries": 0,  # re-deliveries of a scheduled webhook answered with non-200
    "webhook_retry_delay": 1.0,  # first retry delay, doubled each time (Meta: up to 7 days)
    "webhook_duplicates": False,  # deliver every scheduled webhook twice, same bytes
    "require_subscription": False,  # only deliver to WABAs that called POST subscribed_apps
    "verify_callback": False,  # GET-challenge an override_callback_uri like Meta does
    "throughput_limit": 0,  # messages/s per number before 130429 (0 = off)
    "pair_limit_seconds": 0.0,  # min spacing per (number, recipient) before 131056 (0 = off)
    "recipient_failures": {},  # wa_id -> error code: the send is accepted, then a failed status
    "br_legacy_wa_ids": False,  # answer every 13-digit 55DD9 number with its 12-digit wa_id
    "ensure_ascii": True,  # Meta signs the \\u-escaped body (§1.1)
    "escape_slashes": False,  # send "/" as "\\/" (PHP-style): catches re-serialising receivers
    "max_records": 10000,  # recorded requests and messages kept in memory
    "media_url_ttl": 300.0,  # seconds a media download URL stays valid (Meta: 5 minutes)
}

STATUS_ORDER = ("sent", "delivered", "read", "played", "failed")
MESSAGE_TYPES = (
    "audio", "contacts", "document", "image", "interactive", "location", "reaction",
    "sticker", "template", "text", "video",
)
TEMPLATE_CATEGORIES = ("AUTHENTICATION", "MARKETING", "UTILITY")
TEMPLATE_STATUSES = (
    "APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED", "IN_APPEAL", "PENDING_DELETION",
    "ARCHIVED", "LIMIT_EXCEEDED",
)
SYNC_TYPES = ("smb_app_state_sync", "history")
ERROR_DOC_HREF = "/documentation/business-messaging/whatsapp/support/error-codes"

PHONE_FIELDS = (
    "id", "verified_name", "display_phone_number", "quality_rating", "code_verification_status",
    "platform_type", "is_on_biz_app", "throughput", "name_status", "messaging_limit_tier",
    "whatsapp_business_manager_messaging_limit", "account_mode", "status",
    "is_official_business_account", "webhook_configuration", "last_onboarded_time",
)
#: What Meta answers for ``GET /{phone_number_id}`` without ``fields``.
DEFAULT_PHONE_FIELDS = (
    "verified_name", "code_verification_status", "display_phone_number", "quality_rating",
    "platform_type", "throughput", "id",
)
WABA_FIELDS = (
    "id", "name", "currency", "timezone_id", "message_template_namespace",
    "account_review_status", "business_verification_status", "ownership_type",
)
DEFAULT_WABA_FIELDS = ("id", "name", "timezone_id", "message_template_namespace")
TEMPLATE_FIELDS = (
    "name", "parameter_format", "components", "language", "status", "category", "id",
    "quality_score", "rejected_reason", "previous_category", "sub_category",
)
DEFAULT_TEMPLATE_FIELDS = (
    "name", "parameter_format", "components", "language", "status", "category", "id",
)

# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

#: code -> default message (Meta error codes page, §4.2). Meta prefixes most messages "(#code)".
ERROR_MESSAGES = {
    0: "(#0) AuthException",
    1: "An unknown error occurred",
    2: "Service temporarily unavailable",
    3: "(#3) Application does not have the capability to make this API call.",
    4: "(#4) Application request limit reached",
    10: "(#10) Application does not have permission for this action",
    100: "(#100) Invalid parameter",
    190: "Invalid OAuth access token - Cannot parse access token",
    200: "(#200) Permissions error",
    368: "(#368) Temporarily blocked for policies violations",
    2200: "(#2200) Callback verification failed",
    80007: "(#80007) Rate limit issues",
    130429: "(#130429) Rate limit hit",
    130497: "(#130497) Business account is restricted from messaging users in this country",
    131000: "(#131000) Something went wrong",
    131005: "(#131005) Access denied",
    131008: "(#131008) Required parameter is missing",
    131009: "(#131009) Parameter value is not valid",
    131016: "(#131016) Service unavailable",
    131021: "(#131021) Recipient cannot be sender",
    131026: "(#131026) Message undeliverable",
    131030: "(#131030) Recipient phone number not in allowed list",
    131031: "(#131031) Business Account locked",
    131042: "(#131042) Business eligibility payment issue",
    131045: "(#131045) Incorrect certificate",
    131047: "(#131047) Re-engagement message",
    131048: "(#131048) Spam rate limit hit",
    131049: "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
    131050: "(#131050) Unable to deliver the message. This recipient has chosen to stop "
            "receiving marketing messages on WhatsApp from your business.",
    131051: "(#131051) Unsupported message type",
    131053: "(#131053) Media upload error",
    131056: "(#131056) (Business Account, Consumer Account) pair rate limit hit",
    131057: "(#131057) Account in maintenance mode",
    131060: "(#131060) Unsupported message",
    131062: "(#131062) Business-scoped user ID recipient not supported",
    131063: "(#131063) Marketing templates are not supported on Cloud API",
    132000: "(#132000) Number of parameters does not match the expected number of params",
    132001: "(#132001) Template name does not exist in the translation",
    132005: "(#132005) Translated text too long",
    132007: "(#132007) Template Format Character Policy Violated",
    132012: "(#132012) Parameter format does not match format in the created template",
    132015: "(#132015) Template is Paused",
    132016: "(#132016) Template is Disabled",
    132018: "(#132018) There was an issue with the parameters in your template.",
    133004: "(#133004) Server Temporarily Unavailable",
    133010: "(#133010) Account not registered",
    2593109: "History sync is turned off by the business from the WhatsApp Business App",
}
_STATUS_401 = {0, 190}
_STATUS_403 = {3, 10, 368, 131005, 131031} | set(range(200, 300))
_STATUS_429 = {4, 80007, 130429, 131048, 131056}
_STATUS_500 = {131000}
_STATUS_503 = {2, 131016, 133004}
#: HTTP status -> error code a fault uses when it only names a status.
DEFAULT_CODE_FOR_STATUS = {400: 100, 401: 190, 403: 200, 404: 100, 429: 130429, 500: 131000,
                           503: 131016}


#: Fields of a phone number that :meth:`FakeState.set_phone` and ``add_phone`` accept.
PHONE_SETTABLE = frozenset({"status", "quality_rating", "name_status", "messaging_limit_tier",
                            "verified_name", "is_on_biz_app"})


def http_status_for_code(code):
    """Return the HTTP status Meta answers with for a Graph error ``code``.

    :param int code: Graph/WhatsApp error code.
    :rtype: int
    """
    if code in _STATUS_401:
        return 401
    if code in _STATUS_403:
        return 403
    if code in _STATUS_429:
        return 429
    if code in _STATUS_500:
        return 500
    if code in _STATUS_503:
        return 503
    if code == 132001:
        return 404
    return 400


def new_trace_id():
    """Return a random ``fbtrace_id`` shaped like Meta's (23 url-safe characters).

    :rtype: str
    """
    return "A" + secrets.token_urlsafe(16)[:22]


class GraphError(Exception):
    """A Graph API error, rendered exactly like Meta's ``{"error": {...}}`` body.

    :param int code: Graph error code.
    :param str message: message; defaults to Meta's text for ``code``.
    :param int subcode: ``error_subcode``, omitted when ``None``.
    :param int status: HTTP status; defaults to :func:`http_status_for_code`.
    :param str details: ``error_data.details``; WhatsApp codes (>= 130000) always carry one.
    :param str type: ``OAuthException`` (Meta's usual type) or ``GraphMethodException``.
    :param str user_title: optional ``error_user_title``.
    :param str user_msg: optional ``error_user_msg``.
    """

    def __init__(self, code, message=None, subcode=None, status=None, details=None,
                 type=None, user_title=None, user_msg=None):
        self.code = int(code)
        self.message = message or ERROR_MESSAGES.get(self.code, f"(#{self.code}) Error")
        self.subcode = subcode
        self.status = int(status or http_status_for_code(self.code))
        self.details = details
        self.type = type or "OAuthException"
        self.user_title = user_title
        self.user_msg = user_msg
        super().__init__(self.message)

    def body(self):
        """Return the JSON-able error body.

        :rtype: dict
        """
        err = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        if self.user_title:
            err["is_transient"] = False
            err["error_user_title"] = self.user_title
            err["error_user_msg"] = self.user_msg or self.message
        details = self.details
        if details is None and self.code >= 130000:
            details = re.sub(r"^\(#\d+\)\s*", "", self.message)
        if details is not None:
            err["error_data"] = {"messaging_product": "whatsapp", "details": details}
        err["fbtrace_id"] = new_trace_id()
        return {"error": err}


def unsupported(method, object_id):
    """Return Meta's "Unsupported get/post request" error (code 100, subcode 33).

    :param str method: HTTP method of the request.
    :param str object_id: the node id the request addressed.
    :rtype: GraphError
    """
    return GraphError(
        100,
        f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation. "
        "Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
        subcode=33, type="GraphMethodException",
    )


def invalid_param(details, message=None, code=100, subcode=None):
    """Shortcut for a code-100 "(#100) Invalid parameter" error with ``details``.

    :rtype: GraphError
    """
    return GraphError(code, message or ERROR_MESSAGES[code], subcode=subcode, details=details)


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2}|_[A-Z][a-z]{3})?$")


def digits(value):
    """Return only the digits of ``value`` (Meta's ``wa_id``/metadata phone format).

    :rtype: str
    """
    return re.sub(r"\D", "", str(value or ""))


def mask(secret):
    """Mask a token or secret to ``…`` plus its last four characters.

    :rtype: str
    """
    secret = str(secret or "")
    return "…" + secret[-4:] if secret else ""


def placeholders(text):
    """Return the distinct ``{{n}}``/``{{name}}`` placeholders of ``text`` in order.

    :rtype: list
    """
    seen = []
    for name in _PLACEHOLDER.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


def new_wamid(wa_id, salt=None):
    """Return a ``wamid.`` id shaped like Meta's (base64 of a length-prefixed recipient).

    Meta's ids start ``HBgL...`` because they encode the recipient number; keeping the shape
    makes the fake's ids look and sort like real ones.

    :param str wa_id: recipient digits.
    :param str salt: when given the id is deterministic (history re-deliveries keep their ids).
    :rtype: str
    """
    number = (wa_id or "0").encode()[:255]
    if salt is None:
        tail = secrets.token_hex(9).upper().encode()
    else:
        tail = hashlib.sha256(salt.encode()).hexdigest()[:18].upper().encode()
    raw = b"\x1c\x18" + bytes([len(number)]) + number + b"\x15\x02\x00\x11\x18\x12" + tail + b"\x00"
    return "wamid." + base64.b64encode(raw).decode()


def _new_numeric_id(taken):
    while True:
        value = str(secrets.randbelow(9 * 10**15) + 10**15)
        if value not in taken:
            return value


def _encode_cursor(value):
    return base64.urlsafe_b64encode(("c:" + value).encode()).decode().rstrip("=")


def _decode_cursor(cursor):
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise invalid_param(f"Invalid cursor: {cursor}") from None
    if not raw.startswith("c:"):
        raise invalid_param(f"Invalid cursor: {cursor}")
    return raw[2:]


def parse_fields(fields, allowed, node_type):
    """Parse a Graph ``fields`` parameter and check every field exists on the node.

    Nested selections (``throughput{level}``) are accepted and answered in full.

    :raises GraphError: code 100 "Tried accessing nonexisting field".
    :rtype: list
    """
    names = []
    for raw in re.sub(r"\{[^}]*\}", "", fields or "").split(","):
        part = raw.strip()
        if not part:
            continue
        if part not in allowed:
            raise GraphError(
                100,
                f"(#100) Tried accessing nonexisting field ({part}) on node type ({node_type})")
        if part not in names:
            names.append(part)
    return names


def load_seed(seed=None):
    """Load a seed: ``None`` (the demo seed), a dict, or a path to a JSON file.

    :rtype: dict
    """
    if seed is None:
        seed = SEED_PATH
    if isinstance(seed, (str, os.PathLike)):
        with open(seed, encoding="utf-8") as fh:
            seed = json.load(fh)
    seed = copy.deepcopy(seed)
    seed.setdefault("app", {})
    seed["app"].setdefault("app_id", "1234567890")
    seed["app"].setdefault("app_secret", "fake-app-secret")
    seed["app"].setdefault("name", "Fake App")
    for key in ("wabas", "tokens", "codes"):
        seed.setdefault(key, [])
    seed.setdefault("wa_id_map", {})
    seed.setdefault("config", {})
    return seed


def check_config(values):
    """Reject unknown configuration keys.

    :raises ValueError: listing the unknown keys.
    """
    unknown = sorted(set(values) - set(DEFAULT_CONFIG))
    if unknown:
        known = ", ".join(sorted(DEFAULT_CONFIG))
        raise ValueError(f"unknown config keys: {', '.join(unknown)} (known: {known})")


FAULT_KEYS = {
    "match", "times", "status", "code", "subcode", "message", "details", "type", "latency",
    "timeout", "hang", "drop", "body", "content_type", "processed", "headers",
    "truncate",  # media downloads only: send this many bytes of the file, then hang up
}


def normalise_fault(fault, fault_id):
    """Validate a fault description and fill its defaults.

    :raises ValueError: on unknown keys or a bad ``match``.
    :raises TypeError: when ``fault`` is not a dict.
    :rtype: dict
    """
    if not isinstance(fault, dict):
        raise TypeError("a fault must be an object")
    unknown = sorted(set(fault) - FAULT_KEYS)
    if unknown:
        raise ValueError("unknown fault keys: {}".format(", ".join(unknown)))
    match = fault.get("match") or {}
    if not isinstance(match, dict) or set(match) - {"method", "path"}:
        raise ValueError('fault "match" takes only "method" and "path"')
    out = dict(fault)
    out["id"] = fault_id
    out["match"] = {"method": (match.get("method") or "").upper() or None,
                    "path": match.get("path") or None}
    # An absent "times" means once; an explicit null means forever.
    out["times"] = fault.get("times", 1)
    out["hang"] = float(fault.get("hang", 30.0))
    out["latency"] = float(fault.get("latency") or 0.0)
    out["hits"] = 0
    return out


# ---------------------------------------------------------------------------------------------
# Webhook payload builders (§2)
# ---------------------------------------------------------------------------------------------

def envelope(waba_id, field, value, with_time=False):
    """Wrap a change ``value`` in Meta's ``whatsapp_business_account`` envelope.

    Message-path fields carry no ``entry[].time``; account and template events do (§2.6, §2.7).

    :rtype: dict
    """
    entry = {"id": waba_id}
    if with_time:
        entry["time"] = int(time.time())
    entry["changes"] = [{"value": value, "field": field}]
    return {"object": "whatsapp_business_account", "entry": [entry]}


def phone_metadata(phone):
    """Return the ``metadata`` block of message-path webhooks (display number as digits).

    :rtype: dict
    """
    return {"display_phone_number": digits(phone["display_phone_number"]),
            "phone_number_id": phone["id"]}


def error_item(code, details=None, title=None):
    """Return one ``errors[]`` item as found in status and history webhooks.

    :rtype: dict
    """
    title = title or re.sub(r"^\(#\d+\)\s*", "", ERROR_MESSAGES.get(code, "Error"))
    return {"code": code, "title": title, "message": title,
            "error_data": {"details": details or title}, "href": ERROR_DOC_HREF}


def template_draft(params):
    """The template a ``POST message_templates`` asks for, checked as Meta checks it.

    :returns: ``{"name", "language", "category", "parameter_format", "components"}``
    :raises GraphError: code 100 (invalid field)
    """
    name = params.get("name")
    language = params.get("language")
    category = str(params.get("category") or "").upper()
    components = params.get("components")
    if isinstance(components, str):
        try:
            components = json.loads(components)
        except ValueError:
            raise invalid_param("components must be a JSON array") from None
    if not name:
        raise invalid_param("The parameter name is required.",
                            "(#100) The parameter name is required.")
    if not isinstance(name, str) or not _TEMPLATE_NAME.match(name):
        raise invalid_param("Template name can only contain lowercase characters, "
                            f"numbers and underscores: {name!r}")
    if not language or not isinstance(language, str) or not _LANGUAGE.match(language):
        raise invalid_param(f"Invalid language code: {language!r}")
    if category not in TEMPLATE_CATEGORIES:
        choices = ", ".join(TEMPLATE_CATEGORIES)
        got = params.get("category")
        raise invalid_param(
            "category", f'(#100) Param category must be one of {{{choices}}} - got "{got}".')
    fmt = _check_template_components(components, params.get("parameter_format"))
    return {"name": name, "language": language, "category": category,
            "parameter_format": fmt, "components": components}


def _check_template_components(components, parameter_format):
    """Check a new template's components: one BODY with text, known component types,
    placeholders that fit the parameter format.

    :returns: the parameter format, ``POSITIONAL`` (the default) or ``NAMED``
    :raises GraphError: code 100 (invalid field)
    """
    if not isinstance(components, list) or not components:
        raise invalid_param("components must be a non-empty array")
    bodies = [c for c in components
              if isinstance(c, dict) and str(c.get("type", "")).upper() == "BODY"]
    if len(bodies) != 1 or not isinstance(bodies[0].get("text"), str) \
            or not bodies[0]["text"].strip():
        raise invalid_param("A template needs exactly one BODY component with text")
    for comp in components:
        kind = str(comp.get("type", "")).upper() if isinstance(comp, dict) else ""
        if kind not in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
            raise invalid_param(f"Invalid component type: {comp!r}")
    fmt = str(parameter_format or "POSITIONAL").upper()
    if fmt not in ("POSITIONAL", "NAMED"):
        raise invalid_param("parameter_format must be POSITIONAL or NAMED")
    names = placeholders(bodies[0]["text"])
    if fmt == "POSITIONAL" and names != [str(i) for i in range(1, len(names) + 1)]:
        raise invalid_param("Positional placeholders must be {{1}}..{{n}} in order; "
                            "use parameter_format NAMED for named ones")
    if fmt == "NAMED" and any(n.isdigit() for n in names):
        raise invalid_param("NAMED templates need {{name}} placeholders")
    return fmt


class FakeState:
    """All mutable state of one fake Graph server, behind one re-entrant lock.

    :param seed: ``None`` (demo seed), a dict, or a JSON file path; see ``seed_demo.json``.
    :param str app_id: overrides the seed's app id.
    :param str app_secret: overrides the seed's app secret.
    :param dict config: overrides of :data:`DEFAULT_CONFIG`.
    """

    def __init__(self, seed=None, app_id=None, app_secret=None, config=None):
        self.lock = threading.RLock()
        self._seed = load_seed(seed)
        if app_id:
            self._seed["app"]["app_id"] = str(app_id)
        if app_secret:
            self._seed["app"]["app_secret"] = str(app_secret)
        base = dict(DEFAULT_CONFIG)
        for values in (self._seed["config"], config or {}):
            check_config(values)
            base.update(values)
        self._base_config = base
        self.generation = 0
        self.reset()

    # -- seed / reset --------------------------------------------------------------------

    def reset(self):
        """Restore the seed and the construction-time config; forget requests, faults,
        messages and the webhook log."""
        with self.lock:
            seed = copy.deepcopy(self._seed)
            self.generation += 1
            self.config = copy.deepcopy(self._base_config)
            self.app = seed["app"]
            self.wabas = OrderedDict()
            self.phones = {}
            self.templates = {}
            for w in seed["wabas"]:
                waba = {k: v for k, v in w.items() if k not in ("phone_numbers", "templates")}
                waba["id"] = str(waba["id"])
                waba.setdefault("name", waba["id"])
                waba["phone_ids"] = []
                waba["template_ids"] = []
                waba["subscription"] = w.get("subscription")
                self.wabas[waba["id"]] = waba
                for p in w.get("phone_numbers", []):
                    phone = dict(p)
                    phone["id"] = str(phone["id"])
                    phone["waba_id"] = waba["id"]
                    phone.setdefault("contacts", [])
                    phone.setdefault("history", [])
                    phone["syncs"] = {}
                    phone["registrations"] = []
                    self.phones[phone["id"]] = phone
                    waba["phone_ids"].append(phone["id"])
                for t in w.get("templates", []):
                    tpl = self._new_template_record(waba["id"], t)
                    waba["template_ids"].append(tpl["id"])
            self.tokens = {}
            for t in seed["tokens"]:
                self.tokens[t["token"]] = {"token": t["token"], "source": "seed",
                                           "waba_ids": {str(x) for x in t.get("waba_ids", [])}}
            now = time.time()
            self.codes = {}
            for c in seed["codes"]:
                self.codes[c["code"]] = {
                    "code": c["code"], "waba_id": str(c["waba_id"]),
                    "phone_number_id": c.get("phone_number_id"), "issued_at": now,
                    "ttl": c.get("ttl", self.config["code_ttl"]), "used": False}
            self.wa_id_map = {digits(k): digits(v) for k, v in seed["wa_id_map"].items()}
            cap = int(self.config["max_records"])
            self.records = deque(maxlen=cap)
            self.messages = OrderedDict()
            self.faults = []
            self._fault_seq = 0
            self.webhook_log = deque(maxlen=1000)
            self._rate = {}
            self._pair = {}
            self.uploads = OrderedDict()

    def _new_template_record(self, waba_id, data):
        tpl = {
            "id": str(data.get("id") or _new_numeric_id(self.templates)),
            "name": data["name"],
            "language": data["language"],
            "status": data.get("status", "APPROVED"),
            "category": data.get("category", "UTILITY").upper(),
            "parameter_format": data.get("parameter_format", "POSITIONAL").upper(),
            "components": copy.deepcopy(data.get("components", [])),
            "waba_id": waba_id,
        }
        self.templates[tpl["id"]] = tpl
        return tpl

    # -- config ---------------------------------------------------------------------------

    def configure(self, values):
        """Update the run-time config and return it.

        :raises ValueError: on unknown keys.
        :rtype: dict
        """
        check_config(values)
        with self.lock:
            self.config.update(values)
            if "max_records" in values:
                self.records = deque(self.records, maxlen=int(values["max_records"]))
            return copy.deepcopy(self.config)

    def cfg(self, key):
        """Return one config value (under the lock)."""
        with self.lock:
            return self.config[key]

    # -- auth & nodes ---------------------------------------------------------------------

    def authenticate(self, token):
        """Return the token record for ``token``.

        :raises GraphError: 401/190 for a missing, unknown, revoked or expired token.
        :rtype: dict
        """
        with self.lock:
            entry = self.tokens.get(token or "")
        if entry is None or entry.get("revoked"):
            raise GraphError(190)
        expires_at = entry.get("expires_at") or 0
        if expires_at and expires_at <= time.time():
            raise GraphError(190, "Error validating access token: Session has expired.",
                             subcode=463)
        return entry

    def node(self, node_id):
        """Return ``("waba"|"phone"|"template", record)`` or ``(None, None)``."""
        with self.lock:
            if node_id in self.wabas:
                return "waba", self.wabas[node_id]
            if node_id in self.phones:
                return "phone", self.phones[node_id]
            if node_id in self.templates:
                return "template", self.templates[node_id]
        return None, None

    def allowed(self, token_entry, waba_id):
        """Whether ``token_entry`` was issued/seeded for ``waba_id``."""
        return waba_id in token_entry["waba_ids"]

    def require(self, token_entry, node_id, kind, method):
        """Return the ``kind`` node ``node_id`` the token may touch.

        :raises GraphError: 100/33 when missing or of another kind, 403/200 when not allowed.
        """
        found, record = self.node(node_id)
        if found != kind:
            raise unsupported(method, node_id)
        waba_id = record["id"] if kind == "waba" else record["waba_id"]
        if not self.allowed(token_entry, waba_id):
            raise GraphError(200)
        return record

    # -- Embedded Signup codes & tokens ---------------------------------------------------

    def issue_code(self, waba_id=None, phone_number_id=None, ttl=None):
        """Issue a single-use Embedded Signup code for a WABA (default: the first one).

        :param str waba_id: WABA the resulting token is bound to.
        :param str phone_number_id: reported back (defaults to the WABA's first number).
        :param float ttl: lifetime in seconds; defaults to ``config["code_ttl"]``.
        :raises ValueError: for an unknown WABA.
        :rtype: dict
        """
        with self.lock:
            if waba_id is None and phone_number_id is not None:
                phone = self.phones.get(str(phone_number_id))
                waba_id = phone and phone["waba_id"]
            if waba_id is None:
                waba_id = next(iter(self.wabas), None)
            waba_id = str(waba_id)
            if waba_id not in self.wabas:
                raise ValueError(f"unknown waba_id {waba_id}")
            if phone_number_id is None:
                phone_ids = self.wabas[waba_id]["phone_ids"]
                phone_number_id = phone_ids[0] if phone_ids else None
            code = "AQD" + secrets.token_urlsafe(48)
            ttl = self.config["code_ttl"] if ttl is None else ttl
            self.codes[code] = {"code": code, "waba_id": waba_id,
                                "phone_number_id": phone_number_id, "issued_at": time.time(),
                                "ttl": ttl, "used": False}
            return {"code": code, "waba_id": waba_id, "phone_number_id": phone_number_id,
                    "expires_in": ttl}

    def exchange_code(self, client_id, client_secret, code):
        """Exchange an Embedded Signup code for a business token (§3.3).

        :raises GraphError: 101 bad client, 100/36007 used or expired, 100/36008 unknown.
        :rtype: dict
        """
        with self.lock:
            if str(client_id or "") != self.app["app_id"]:
                raise GraphError(101, "Error validating application. Invalid application ID.")
            if str(client_secret or "") != self.app["app_secret"]:
                raise GraphError(101, "Error validating client secret.")
            if not code:
                raise GraphError(1, "Missing authorization code")
            entry = self.codes.get(code)
            if entry is None:
                raise GraphError(100, "Invalid verification code format.", subcode=36008)
            expired = entry["ttl"] is not None and time.time() > entry["issued_at"] + entry["ttl"]
            if entry["used"] or expired:
                raise GraphError(100, "This authorization code has expired.", subcode=36007)
            entry["used"] = True
            token = "EAAG" + secrets.token_urlsafe(96).replace("-", "").replace("_", "")[:120]
            self.tokens[token] = {"token": token, "source": "code",
                                  "waba_ids": {entry["waba_id"]}}
            return {"access_token": token, "token_type": "bearer"}

    def debug_token(self, input_token):
        """Answer ``GET /debug_token`` for ``input_token`` (granular scopes list the WABAs).

        :rtype: dict
        """
        with self.lock:
            entry = self.tokens.get(input_token or "")
            if entry is None or entry.get("revoked"):
                return {"data": {"is_valid": False, "error": {
                    "code": 190, "message": "Invalid OAuth access token."}}}
            wabas = sorted(entry["waba_ids"])
            expires_at = int(entry.get("expires_at") or 0)
            if expires_at and expires_at <= time.time():
                return {"data": {"app_id": self.app["app_id"], "type": "USER",
                                 "is_valid": False, "expires_at": expires_at, "error": {
                                     "code": 190, "subcode": 463,
                                     "message": "Session has expired."}}}
            return {"data": {
                "app_id": self.app["app_id"],
                "type": "USER" if expires_at else "SYSTEM_USER",
                "application": self.app["name"], "data_access_expires_at": 0,
                "expires_at": expires_at, "is_valid": True,
                "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
                "granular_scopes": [
                    {"scope": "whatsapp_business_management", "target_ids": wabas},
                    {"scope": "whatsapp_business_messaging", "target_ids": wabas}]}}

    def add_token(self, token, waba_ids):
        """Issue ``token`` for ``waba_ids``, as a business generating a new System User token
        in Meta Business Settings would (the value is the caller's, so a browser test can
        type it).

        :raises ValueError: for an unknown WABA.
        """
        with self.lock:
            unknown = set(waba_ids) - set(self.wabas)
            if unknown:
                raise ValueError(f"unknown waba_id {sorted(unknown)}")
            self.tokens[token] = {"token": token, "source": "manual",
                                  "waba_ids": set(waba_ids)}

    def set_token(self, token, expires_at=None, revoked=None):
        """Change a token as Meta would: give it an expiry (a user token) or revoke it.

        A revoked token fails every call with 190 and ``debug_token`` calls it invalid; an
        expired one too. ``expires_at=0`` makes it a System User token again.

        :param float expires_at: Unix time; ``0`` never expires.
        :param bool revoked: revoke (``True``) or restore (``False``).
        :raises KeyError: for an unknown token.
        """
        with self.lock:
            entry = self.tokens[token]
            if expires_at is not None:
                entry["expires_at"] = int(expires_at)
            if revoked is not None:
                entry["revoked"] = bool(revoked)

    def set_phone(self, phone_id, **values):
        """Change fields of a phone number (``status``, ``quality_rating``, ``name_status``,
        ``messaging_limit_tier``...), as WhatsApp Manager would show them.

        :raises KeyError: for an unknown phone number or field.
        """
        unknown = sorted(set(values) - PHONE_SETTABLE)
        if unknown:
            raise KeyError("unknown phone fields: {}".format(", ".join(unknown)))
        with self.lock:
            self.phones[str(phone_id)].update(values)
            return dict(self.phones[str(phone_id)])

    def add_phone(self, waba_id, phone_id, display_phone_number, **values):
        """Add a phone number to a WABA, as a business adding a second number in WhatsApp
        Manager (a number change). ``values``: the :meth:`set_phone` fields.

        :raises KeyError: for an unknown WABA or field.
        :raises ValueError: for a phone number id already in use.
        :rtype: dict
        """
        unknown = sorted(set(values) - PHONE_SETTABLE)
        if unknown:
            raise KeyError("unknown phone fields: {}".format(", ".join(unknown)))
        with self.lock:
            waba = self.wabas[str(waba_id)]
            if str(phone_id) in self.phones:
                raise ValueError(f"phone number id {phone_id} is already in use")
            phone = dict(values, id=str(phone_id), waba_id=waba["id"],
                         display_phone_number=display_phone_number, contacts=[], history=[],
                         syncs={}, registrations=[])
            self.phones[phone["id"]] = phone
            waba["phone_ids"].append(phone["id"])
            return dict(phone)

    def number_change_webhook(self, phone_id, old_wa_id, new_wa_id, name=None):
        """Build the ``user_changed_number`` system message (System messages webhook
        reference): from the old number, the new ``wa_id`` in ``system``, no ``contacts``.

        :return: ``(waba_id, wamid, payload)``.
        """
        with self.lock:
            phone = self.phones[str(phone_id)]
            md = phone_metadata(phone)
        old, new = digits(old_wa_id), digits(new_wa_id)
        wamid = new_wamid(old)
        msg = {"from": old, "id": wamid, "timestamp": str(int(time.time())), "type": "system",
               "system": {"body": f"User {name or old} changed from {old} to {new}",
                          "wa_id": new, "type": "user_changed_number"}}
        value = {"messaging_product": "whatsapp", "metadata": md, "messages": [msg]}
        return phone["waba_id"], wamid, envelope(phone["waba_id"], "messages", value)

    def phone_event_webhook(self, phone_id, field, value):
        """Build a WABA-level phone webhook (``phone_number_quality_update``,
        ``phone_number_name_update``) for ``phone_id``: no ``metadata``, the number in
        ``display_phone_number`` (digits).

        :rtype: tuple[str, dict]
        """
        with self.lock:
            phone = self.phones[str(phone_id)]
            value = dict({"display_phone_number": digits(phone["display_phone_number"])},
                         **value)
            return phone["waba_id"], envelope(phone["waba_id"], field, value, with_time=True)

    # -- nodes -----------------------------------------------------------------------------

    def phone_view(self, phone, fields=None):
        """Return the requested fields of a phone number node (``id`` always included).

        :rtype: dict
        """
        names = (parse_fields(fields, PHONE_FIELDS, "WhatsAppBusinessPhoneNumber")
                 if fields else list(DEFAULT_PHONE_FIELDS))
        with self.lock:
            url = self.webhook_target(phone["waba_id"], check_subscription=False)
            values = {
                "id": phone["id"],
                "verified_name": phone.get("verified_name", ""),
                "display_phone_number": phone["display_phone_number"],
                "quality_rating": phone.get("quality_rating", "GREEN"),
                "code_verification_status": phone.get("code_verification_status", "VERIFIED"),
                "platform_type": phone.get("platform_type", "CLOUD_API"),
                "is_on_biz_app": bool(phone.get("is_on_biz_app", False)),
                "throughput": {"level": phone.get("throughput_level", "STANDARD")},
                "name_status": phone.get("name_status", "APPROVED"),
                "messaging_limit_tier": phone.get("messaging_limit_tier", "TIER_250"),
                "whatsapp_business_manager_messaging_limit":
                    phone.get("messaging_limit_tier", "TIER_250"),
                "account_mode": "LIVE",
                "status": phone.get("status", "CONNECTED"),
                "is_official_business_account": False,
                "webhook_configuration": {"application": url} if url else {},
                "last_onboarded_time": phone.get("last_onboarded_time",
                                                 "2026-01-15T12:00:00+0000"),
            }
        out = {name: values[name] for name in names if name != "id"}
        out["id"] = phone["id"]
        return out

    def waba_view(self, waba, fields=None):
        """Return the requested fields of a WABA node.

        :rtype: dict
        """
        names = (parse_fields(fields, WABA_FIELDS, "WhatsAppBusinessAccount")
                 if fields else list(DEFAULT_WABA_FIELDS))
        values = {
            "id": waba["id"], "name": waba["name"], "currency": waba.get("currency", "USD"),
            "timezone_id": waba.get("timezone_id", "1"),
            "message_template_namespace": waba.get("message_template_namespace", ""),
            "account_review_status": waba.get("account_review_status", "APPROVED"),
            "business_verification_status": waba.get("business_verification_status",
                                                     "verified"),
            "ownership_type": "CLIENT_OWNED",
        }
        out = {name: values[name] for name in names if name != "id"}
        out["id"] = waba["id"]
        return out

    def phone_numbers(self, waba, fields=None):
        """``GET /{waba_id}/phone_numbers``.

        :rtype: dict
        """
        with self.lock:
            data = [self.phone_view(self.phones[pid], fields) for pid in waba["phone_ids"]]
        out = {"data": data}
        if data:
            out["paging"] = {"cursors": {"before": _encode_cursor(data[0]["id"]),
                                         "after": _encode_cursor(data[-1]["id"])}}
        return out

    # -- templates -------------------------------------------------------------------------

    def template_view(self, tpl, names):
        """Return the requested fields of a template record.

        :rtype: dict
        """
        values = dict(tpl)
        values.setdefault("quality_score", {"score": "UNKNOWN"})
        out = {}
        for name in names:
            if name in values and name != "waba_id":
                out[name] = copy.deepcopy(values[name])
        if "id" not in out:
            out["id"] = tpl["id"]
        return out

    def list_templates(self, waba, params, base_url):
        """``GET /{waba_id}/message_templates`` with cursor pagination.

        :param dict params: query parameters (``limit``, ``after``, ``before``, ``fields``,
            filters ``name``, ``status``, ``language``, ``category``).
        :param str base_url: the request's URL without query, for ``paging.next``.
        :rtype: dict
        """
        names = (parse_fields(params.get("fields"), TEMPLATE_FIELDS, "WhatsAppMessageTemplate")
                 if params.get("fields") else list(DEFAULT_TEMPLATE_FIELDS))
        try:
            limit = int(params.get("limit") or 25)
        except ValueError:
            raise invalid_param("limit must be an integer") from None
        if limit < 1:
            raise invalid_param("limit must be positive")
        with self.lock:
            items = [self.templates[t] for t in waba["template_ids"]]
            for key in ("name", "status", "language", "category"):
                wanted = params.get(key)
                if wanted:
                    items = [t for t in items if str(t[key]).lower() == wanted.lower()
                             or (key == "name" and wanted.lower() in t["name"])]
            ids = [t["id"] for t in items]
            start, end = 0, min(limit, len(items))
            if params.get("after"):
                cursor_id = _decode_cursor(params["after"])
                if cursor_id not in ids:
                    raise invalid_param("Invalid cursor: {}".format(params["after"]))
                start = ids.index(cursor_id) + 1
                end = min(start + limit, len(items))
            elif params.get("before"):
                cursor_id = _decode_cursor(params["before"])
                if cursor_id not in ids:
                    raise invalid_param("Invalid cursor: {}".format(params["before"]))
                end = ids.index(cursor_id)
                start = max(0, end - limit)
            page = items[start:end]
            data = [self.template_view(t, names) for t in page]
        out = {"data": data}
        if page:
            cursors = {"before": _encode_cursor(page[0]["id"]),
                       "after": _encode_cursor(page[-1]["id"])}
            paging = {"cursors": cursors}
            keep = {k: v for k, v in params.items()
                    if k not in ("after", "before", "access_token")}
            keep["limit"] = str(limit)
            if end < len(items):
                paging["next"] = _url(base_url, dict(keep, after=cursors["after"]))
            if start > 0:
                paging["previous"] = _url(base_url, dict(keep, before=cursors["before"]))
            out["paging"] = paging
        return out

    def create_template(self, waba, params):
        """``POST /{waba_id}/message_templates``: validate and store a PENDING template.

        :raises GraphError: code 100 (invalid field) or 100/2388023 (duplicate).
        :rtype: dict
        """
        draft = template_draft(params)
        name, language = draft["name"], draft["language"]
        with self.lock:
            for tid in waba["template_ids"]:
                tpl = self.templates[tid]
                if tpl["name"] == name and tpl["language"] == language:
                    raise GraphError(
                        100, "Message template with this name and language already exists",
                        subcode=2388023, user_title="Message template already exists",
                        user_msg=f"There is already {language} content for this template. You can "
                                 "create a new template and try again.")
            tpl = self._new_template_record(waba["id"], dict(draft, status="PENDING"))
            waba["template_ids"].append(tpl["id"])
            return {"id": tpl["id"], "status": "PENDING", "category": draft["category"]}

    def delete_template(self, waba, name, hsm_id=None):
        """``DELETE /{waba_id}/message_templates?name=`` (all languages, or one ``hsm_id``).

        :rtype: dict
        """
        with self.lock:
            doomed = [t for t in waba["template_ids"] if self.templates[t]["name"] == name
                      and (not hsm_id or t == str(hsm_id))]
            if not doomed:
                raise invalid_param(f"Message template {name!r} not found",
                                    subcode=2593002)
            for tid in doomed:
                waba["template_ids"].remove(tid)
                del self.templates[tid]
        return {"success": True}

    def set_template_status(self, template_id, status):
        """Change a template's status; return ``(waba_id, template copy)``.

        :raises KeyError: unknown template id.
        :raises ValueError: unknown status.
        """
        status = str(status).upper()
        if status not in TEMPLATE_STATUSES:
            raise ValueError("status must be one of {}".format(", ".join(TEMPLATE_STATUSES)))
        with self.lock:
            tpl = self.templates[str(template_id)]
            tpl["status"] = status
            return tpl["waba_id"], dict(tpl)

    def find_template(self, waba_id=None, name=None, language=None):
        """Return the id of a template found by name (and language/WABA when given)."""
        with self.lock:
            for tpl in self.templates.values():
                if tpl["name"] == name and (language is None or tpl["language"] == language) \
                        and (waba_id is None or tpl["waba_id"] == str(waba_id)):
                    return tpl["id"]
        raise KeyError(f"no template {name}/{language}")

    # -- subscriptions & webhook targets -------------------------------------------------

    def subscribe(self, waba, params):
        """``POST /{waba_id}/subscribed_apps``.

        :rtype: dict
        """
        uri = params.get("override_callback_uri")
        if uri and not params.get("verify_token"):
            raise invalid_param("verify_token is required with override_callback_uri")
        with self.lock:
            waba["subscription"] = {"override_callback_uri": uri or None,
                                    "verify_token": params.get("verify_token"),
                                    "time": time.time()}
        return {"success": True}

    def subscriptions(self, waba):
        """``GET /{waba_id}/subscribed_apps``.

        :rtype: dict
        """
        with self.lock:
            sub = waba.get("subscription")
            if not sub:
                return {"data": []}
            item = {"whatsapp_business_api_data": {"id": self.app["app_id"],
                                                   "name": self.app["name"]}}
            if sub.get("override_callback_uri"):
                item["override_callback_uri"] = sub["override_callback_uri"]
            return {"data": [item]}

    def unsubscribe(self, waba):
        """``DELETE /{waba_id}/subscribed_apps``."""
        with self.lock:
            waba["subscription"] = None
        return {"success": True}

    def webhook_target(self, waba_id, check_subscription=True):
        """Return the URL webhooks for ``waba_id`` go to, or ``None``.

        A WABA's ``override_callback_uri`` wins over ``config["webhook_url"]``; with
        ``require_subscription`` an unsubscribed WABA gets nothing (Meta only calls subscribed
        apps, the commonest "webhooks never arrive" cause, §5.7).
        """
        with self.lock:
            waba = self.wabas.get(waba_id)
            sub = waba and waba.get("subscription")
            if check_subscription and self.config["require_subscription"] and not sub:
                return None
            if sub and sub.get("override_callback_uri"):
                return sub["override_callback_uri"]
            return self.config["webhook_url"]

    # -- sending ---------------------------------------------------------------------------

    def wa_id_for(self, to):
        """Return the ``wa_id`` Meta would answer for the ``to`` of a send.

        :rtype: str
        """
        number = digits(to)
        with self.lock:
            if number in self.wa_id_map:
                return self.wa_id_map[number]
            legacy = self.config["br_legacy_wa_ids"]
        if legacy and len(number) == 13 and number.startswith("55") and number[4] == "9":
            return number[:4] + number[5:]
        return number

    def _check_template(self, waba_id, template):
        if not isinstance(template, dict):
            raise invalid_param("template must be an object",
                                "(#100) The parameter template is required.")
        name = template.get("name")
        language = template.get("language") or {}
        code = language.get("code") if isinstance(language, dict) else language
        if not name:
            raise invalid_param("template name is required",
                                "(#100) The parameter template['name'] is required.")
        if not code:
            raise invalid_param("template language is required",
                                "(#100) The parameter template['language'] is required.")
        with self.lock:
            waba = self.wabas[waba_id]
            tpl = next((self.templates[t] for t in waba["template_ids"]
                        if self.templates[t]["name"] == name
                        and self.templates[t]["language"] == code), None)
            tpl = copy.deepcopy(tpl)
        if tpl is None:
            raise GraphError(132001, details=f"template name ({name}) does not exist in {code}")
        if tpl["status"] == "PAUSED":
            raise GraphError(132015, details=f"Template {name} is paused")
        if tpl["status"] == "DISABLED":
            raise GraphError(132016, details=f"Template {name} is disabled")
        if tpl["status"] != "APPROVED":
            raise GraphError(132001, details=f"template name ({name}) does not exist in {code}")
        if not isinstance(template.get("components") or [], list):
            raise invalid_param("template components must be an array")
        sent = {}
        for comp in template.get("components") or []:
            if isinstance(comp, dict):
                sent.setdefault(str(comp.get("type", "")).lower(), comp.get("parameters") or [])
        self._check_url_buttons(tpl, template.get("components") or [])
        for comp in tpl["components"]:
            kind = str(comp.get("type", "")).lower()
            if kind not in ("body", "header"):
                continue
            if kind == "header" and str(comp.get("format", "TEXT")).upper() != "TEXT":
                self._check_media_header(comp, sent.get("header", []))
                continue
            expected = placeholders(comp.get("text", ""))
            given = sent.get(kind, [])
            if len(given) != len(expected):
                raise GraphError(
                    132000, details=f"{kind}: number of localizable_params ({len(given)}) does not "
                    f"match the expected number of params ({len(expected)})")
            for param in given:
                self._check_param(param, tpl["parameter_format"], expected)
        return tpl

    @staticmethod
    def _check_media_header(comp, given):
        """An IMAGE/DOCUMENT/VIDEO header takes one parameter of that type, by id or link."""
        fmt = str(comp.get("format")).lower()
        if len(given) != 1:
            raise GraphError(132000, details=f"header: number of localizable_params "
                             f"({len(given)}) does not match the expected number of params (1)")
        param = given[0] if isinstance(given[0], dict) else {}
        media = param.get(fmt) if isinstance(param.get(fmt), dict) else {}
        if param.get("type") != fmt or not (media.get("id") or media.get("link")):
            raise GraphError(132012, details=f"header: expected a {fmt.upper()} parameter "
                             "with an id or a link")

    @staticmethod
    def _check_url_buttons(tpl, components):
        """Each URL button whose link holds ``{{1}}`` takes one text parameter at its index."""
        sent = {str(c.get("index")): c for c in components
                if isinstance(c, dict) and str(c.get("type", "")).lower() == "button"
                and str(c.get("sub_type", "")).lower() == "url"}
        for comp in tpl["components"]:
            if str(comp.get("type", "")).upper() != "BUTTONS":
                continue
            for index, button in enumerate(comp.get("buttons") or []):
                if button.get("type") != "URL" or not placeholders(button.get("url", "")):
                    continue
                params = (sent.get(str(index)) or {}).get("parameters") or []
                if len(params) != 1:
                    raise GraphError(132000, details=f"button {index}: number of "
                                     f"localizable_params ({len(params)}) does not match the "
                                     "expected number of params (1)")
                text = params[0].get("text") if isinstance(params[0], dict) else None
                if not text or not str(text).strip():
                    raise GraphError(131008, details="Parameter of type text is missing text "
                                     "value")

    def _template_media_failure(self, phone, template):
        """131053 (as a failed status) when a media header names an id Meta does not hold."""
        for comp in template.get("components") or []:
            if not isinstance(comp, dict) or str(comp.get("type", "")).lower() != "header":
                continue
            for param in comp.get("parameters") or []:
                kind = param.get("type") if isinstance(param, dict) else None
                if kind in ("image", "document", "video") and isinstance(param.get(kind), dict):
                    failure = self._check_media_object(phone, kind, param[kind])
                    if failure:
                        return failure
        return None

    @staticmethod
    def _check_param(param, fmt, expected):
        if not isinstance(param, dict):
            raise invalid_param("Each parameter must be an object")
        if fmt == "NAMED":
            pname = param.get("parameter_name")
            if not pname:
                raise invalid_param("Parameter name is missing or empty")
            if pname not in expected:
                raise invalid_param(f"Parameter name {pname!r} does not exist in the template")
        if param.get("type", "text") == "text":
            text = param.get("text")
            if text is None or not str(text).strip():
                raise GraphError(131008, details="Parameter of type text is missing text value")
            if re.search(r"[\n\t]| {5,}", str(text)):
                raise GraphError(132018, details="Param text cannot have new-line/tab "
                                 "characters or more than 4 consecutive spaces")

    def send_message(self, phone, payload):
        """``POST /{phone_number_id}/messages``: validate, record and answer like Meta.

        :param dict phone: the sending phone record (already permission-checked).
        :param dict payload: the request JSON.
        :return: ``(response body, message record)``; the record's ``plan`` lists the status
            webhooks to send (``[(status, error_code or None), ...]``).
        :raises GraphError: validation, template and rate-limit errors.
        """
        to, msg_type = self._check_envelope(payload)
        wa_id = self.wa_id_for(to)
        if len(wa_id) < 8:
            raise invalid_param(f"Invalid WhatsApp recipient: {to!r}")
        if wa_id == digits(phone["display_phone_number"]):
            raise GraphError(131021)
        category, media_failure = self._check_content(phone, msg_type, payload)
        now = time.time()
        with self.lock:
            self._check_throughput(phone, wa_id, now)
            wamid = new_wamid(wa_id)
            while wamid in self.messages:
                wamid = new_wamid(wa_id)
            record = {
                "wamid": wamid, "phone_number_id": phone["id"], "waba_id": phone["waba_id"],
                "to": to, "wa_id": wa_id, "type": msg_type, "category": category,
                "biz_opaque_callback_data": payload.get("biz_opaque_callback_data"),
                "payload": copy.deepcopy(payload), "time": now, "statuses": [],
                "plan": self._status_plan(wa_id, media_failure),
            }
            self.messages[wamid] = record
            while len(self.messages) > int(self.config["max_records"]):
                self.messages.popitem(last=False)
        response = {"messaging_product": "whatsapp",
                    "contacts": [{"input": to, "wa_id": wa_id}],
                    "messages": [{"id": wamid, "message_status": "accepted"}]}
        return response, record

    @staticmethod
    def _check_envelope(payload):
        """The fields every send needs, checked as Meta does; returns ``(to, type)``."""
        if not isinstance(payload, dict):
            raise invalid_param("The request body must be a JSON object")
        product = payload.get("messaging_product")
        if not product:
            raise invalid_param("messaging_product is required",
                                "(#100) The parameter messaging_product is required.")
        if product != "whatsapp":
            raise invalid_param('messaging_product must be "whatsapp"',
                                '(#100) Param messaging_product must be one of {WHATSAPP} - '
                                f'got "{product}".')
        to = payload.get("to")
        if not to:
            raise invalid_param("to is required", "(#100) The parameter to is required.")
        msg_type = payload.get("type", "text")
        if msg_type not in MESSAGE_TYPES:
            choices = ", ".join(t.upper() for t in MESSAGE_TYPES)
            raise invalid_param(
                "type", f'(#100) Param type must be one of {{{choices}}} - got "{msg_type}".')
        return to, msg_type

    def _check_content(self, phone, msg_type, payload):
        """The message's own object, checked by type; returns ``(category, media failure)``."""
        if msg_type == "text":
            body = (payload.get("text") or {}).get("body") if isinstance(
                payload.get("text"), dict) else None
            if not body:
                raise invalid_param("text body is required",
                                    "(#100) The parameter text['body'] is required.")
            if len(body) > 4096:
                raise invalid_param("text body too long", "(#100) Param text['body'] must be "
                                    "at most 4096 characters long.")
            return "service", None
        if msg_type == "template":
            tpl = self._check_template(phone["waba_id"], payload.get("template"))
            return tpl["category"].lower(), self._template_media_failure(
                phone, payload["template"])
        if not isinstance(payload.get(msg_type), dict):
            raise invalid_param(f"{msg_type} object is required",
                                f"(#100) The parameter {msg_type} is required.")
        return "service", self._check_media_object(phone, msg_type, payload[msg_type])

    def _check_throughput(self, phone, wa_id, now):
        """The number's messages per second (130429) and the pair spacing (131056); call
        with the lock held: a send that passes is counted."""
        limit = self.config["throughput_limit"]
        if limit:
            window = self._rate.setdefault(phone["id"], deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                raise GraphError(130429, details="Cloud API message throughput has been "
                                 "reached.")
            window.append(now)
        spacing = self.config["pair_limit_seconds"]
        if spacing:
            key = (phone["id"], wa_id)
            last = self._pair.get(key)
            if last is not None and now - last < spacing:
                raise GraphError(131056, details="Message failed to send because there "
                                 "were too many messages sent from this phone number to the "
                                 "same phone number in a short period of time.")
            self._pair[key] = now

    def _status_plan(self, wa_id, media_failure):
        """The status webhooks the send will get: ``[(status, error code or None), ...]``."""
        failure = self.config["recipient_failures"].get(wa_id) or media_failure
        if failure:
            return [("failed", int(failure))]
        return [(item.get("status", "failed"), item.get("code")) if isinstance(item, dict)
                else (str(item), None) for item in self.config["status_sequence"]]

    # -- media uploads (POST /{phone_number_id}/media) -----------------------------------

    def store_upload(self, phone, kind, upload):
        """Keep an uploaded file for ``phone`` and answer its new media id like Meta.

        :param dict upload: the checked file part (``filename``, ``content_type``, ``content``)
        :rtype: dict
        """
        with self.lock:
            media_id = _new_numeric_id(self.uploads)
            self.uploads[media_id] = dict(upload, id=media_id, kind=kind,
                                          phone_number_id=phone["id"], time=time.time(),
                                          sha256=hashlib.sha256(upload["content"]).hexdigest())
            while len(self.uploads) > int(self.config["max_records"]):
                self.uploads.popitem(last=False)
        return {"id": media_id}

    def upload(self, media_id):
        """The uploaded file behind ``media_id`` (with its bytes), or ``None``.

        :rtype: dict | None
        """
        with self.lock:
            found = self.uploads.get(str(media_id))
            return dict(found) if found else None

    def _check_media_object(self, phone, msg_type, media):
        """Check the media object of an image/audio/video/document/sticker send.

        Meta accepts a send whose media id it cannot use and fails it afterwards with a
        ``failed`` status (131053): the returned code plans that status.

        :returns: an error code for the status plan, or ``None``
        :raises GraphError: code 100 when the object has neither ``id`` nor ``link``
        """
        if msg_type not in ("audio", "document", "image", "sticker", "video"):
            return None
        if not media.get("id") and not media.get("link"):
            raise invalid_param(f"{msg_type} needs an id or a link",
                                f"(#100) Param {msg_type} must contain either id or link.")
        if media.get("link"):
            return None
        with self.lock:
            upload = self.uploads.get(str(media["id"]))
        if upload is None or upload["phone_number_id"] != phone["id"]:
            return 131053
        return None

    def status_webhook(self, wamid, status, code=None):
        """Build a §2.2 status webhook for a sent message and remember the status.

        ``pricing`` goes with ``sent`` and with the first of ``delivered``/``read`` (Meta: "with
        sent and one of delivered/read, not both"). Returns ``(waba_id, payload)`` or
        ``(None, None)`` when the message is unknown (e.g. after a reset).
        """
        with self.lock:
            msg = self.messages.get(wamid)
            if msg is None:
                return None, None
            phone = self.phones.get(msg["phone_number_id"])
            if phone is None:
                return None, None
            item = {"id": wamid, "status": status, "timestamp": str(int(time.time())),
                    "recipient_id": msg["wa_id"]}
            if msg["biz_opaque_callback_data"] is not None:
                item["biz_opaque_callback_data"] = msg["biz_opaque_callback_data"]
            priced = status == "sent" or (
                status in ("delivered", "read")
                and not {"delivered", "read"} & set(msg["statuses"]))
            if priced:
                free = msg["category"] == "service"
                item["pricing"] = {"billable": not free, "pricing_model": "PMP",
                                   "type": "free_customer_service" if free else "regular",
                                   "category": msg["category"]}
            if status == "failed":
                item["errors"] = [error_item(int(code or 131026))]
            msg["statuses"].append(status)
            value = {"messaging_product": "whatsapp", "metadata": phone_metadata(phone),
                     "statuses": [item]}
            return msg["waba_id"], envelope(msg["waba_id"], "messages", value)

    def register(self, phone, payload):
        """``POST /{phone_number_id}/register``: recorded so tests can assert coexistence
        numbers are never registered (§3.3: "skip the phone number registration step")."""
        pin = str((payload or {}).get("pin") or "")
        if (payload or {}).get("messaging_product") != "whatsapp":
            raise invalid_param("messaging_product is required",
                                "(#100) The parameter messaging_product is required.")
        if not re.fullmatch(r"\d{6}", pin):
            raise invalid_param("pin must be 6 digits", "(#100) The parameter pin is required.")
        with self.lock:
            phone["registrations"].append({"time": time.time(), "pin": mask(pin)})
        return {"success": True}

    # -- coexistence sync (§3.4) -------------------------------------------------------------

    def request_sync(self, phone, payload):
        """``POST /{phone_number_id}/smb_app_data``; each ``sync_type`` only once per number.

        :return: ``(response, sync_type)``.
        """
        payload = payload if isinstance(payload, dict) else {}
        if payload.get("messaging_product") != "whatsapp":
            raise invalid_param("messaging_product is required",
                                "(#100) The parameter messaging_product is required.")
        sync_type = payload.get("sync_type")
        if sync_type not in SYNC_TYPES:
            raise invalid_param("sync_type", '(#100) Param sync_type must be one of '
                                f'{{SMB_APP_STATE_SYNC, HISTORY}} - got "{sync_type}".')
        with self.lock:
            if not phone.get("is_on_biz_app"):
                raise invalid_param(
                    "This phone number is not connected to the WhatsApp Business app "
                    "(coexistence); smb_app_data is only available for coexistence numbers.")
            if sync_type in phone["syncs"]:
                raise invalid_param(
                    "sync_type {} was already requested for this phone number (request_id "
                    "{}). It can only be requested once; the business must offboard and "
                    "complete Embedded Signup again to repeat it.".format(
                        sync_type, phone["syncs"][sync_type]["request_id"]),
                    f"(#100) Synchronization of {sync_type} was already requested for this phone "
                    "number")
            request_id = str(secrets.randbelow(9 * 10**15) + 10**15)
            phone["syncs"][sync_type] = {"request_id": request_id, "time": time.time()}
        return {"messaging_product": "whatsapp", "request_id": request_id}, sync_type

    def contacts_webhooks(self, phone):
        """Build the §2.4 ``smb_app_state_sync`` webhooks for a number's seeded contacts.

        :rtype: list
        """
        with self.lock:
            size = max(1, int(self.config["contacts_chunk_size"]))
            contacts = copy.deepcopy(phone["contacts"])
            md = phone_metadata(phone)
        stamp = str(int(time.time()))
        items = [{"type": "contact", "contact": c, "action": "add",
                  "metadata": {"timestamp": stamp}} for c in contacts]
        payloads = []
        for i in range(0, len(items), size):
            value = {"messaging_product": "whatsapp", "metadata": md,
                     "state_sync": items[i:i + size]}
            payloads.append(envelope(phone["waba_id"], "smb_app_state_sync", value))
        return payloads

    def contact_webhook(self, phone_id, phone_number, action="add", full_name=None,
                        first_name=None):
        """Build one later address-book change (``add`` = added or edited, ``remove``).

        :rtype: tuple
        """
        with self.lock:
            phone = self.phones[str(phone_id)]
            md = phone_metadata(phone)
        contact = {"phone_number": digits(phone_number)}
        if action != "remove":
            # Meta leaves the names out on remove (§2.4).
            contact = {"full_name": full_name or phone_number,
                       "first_name": first_name or (full_name or "").split(" ")[0],
                       "phone_number": digits(phone_number)}
        value = {"messaging_product": "whatsapp", "metadata": md, "state_sync": [{
            "type": "contact", "contact": contact, "action": action,
            "metadata": {"timestamp": str(int(time.time()))}}]}
        return phone["waba_id"], envelope(phone["waba_id"], "smb_app_state_sync", value)

    def history_webhooks(self, phone):
        """Build the §2.3 ``history`` webhooks: chunks per phase 0..2, progress up to 100,
        then media follow-ups for placeholders younger than 14 days; or the 2593109 error.

        :rtype: list
        """
        with self.lock:
            md = phone_metadata(phone)
            threads = copy.deepcopy(phone["history"])
            per_chunk = max(1, int(self.config["history_chunk_threads"]))
            declined = bool(phone.get("history_declined"))
        waba_id = phone["waba_id"]
        if declined:
            title = ERROR_MESSAGES[2593109]
            value = {"messaging_product": "whatsapp", "metadata": md, "history": [{"errors": [{
                "code": 2593109, "title": title, "message": title,
                "error_data": {"details": "History sharing is turned off by the business"}}]}]}
            return [envelope(waba_id, "history", value)]
        phases = {0: [], 1: [], 2: []}
        followups = []
        onboard = time.time()
        for thread in threads:
            by_phase = _history_thread(phone, md["display_phone_number"], thread, onboard,
                                       followups)
            for phase, msgs in by_phase.items():
                if msgs:
                    phases[phase].append({"id": thread["id"], "messages": msgs})
        payloads = []
        chunks = _history_chunks(phases, per_chunk)
        for n, (phase, order, group) in enumerate(chunks, start=1):
            value = {"messaging_product": "whatsapp", "metadata": md, "history": [{
                "metadata": {"phase": phase, "chunk_order": order,
                             "progress": round(100.0 * n / len(chunks))},
                "threads": group}]}
            payloads.append(envelope(waba_id, "history", value))
        for item in followups:
            value = {"messaging_product": "whatsapp", "metadata": md, "messages": [item]}
            payloads.append(envelope(waba_id, "history", value))
        return payloads

    # -- simulated inbound events ---------------------------------------------------------

    def inbound_webhook(self, phone_id, sender, text=None, name=None, button=None,
                        context_id=None):
        """Build a §2.1 inbound message (text, or a template quick-reply ``button``).

        :param dict button: ``{"payload": ..., "text": ...}`` for a quick-reply tap.
        :param str context_id: wamid the user replied to (``context.id``).
        :return: ``(waba_id, wamid, payload)``.
        """
        with self.lock:
            phone = self.phones[str(phone_id)]
            md = phone_metadata(phone)
        sender = digits(sender)
        wamid = new_wamid(sender)
        msg = {"from": sender, "id": wamid, "timestamp": str(int(time.time()))}
        if context_id:
            msg["context"] = {"from": md["display_phone_number"], "id": context_id}
        if button:
            msg["type"] = "button"
            msg["button"] = {"payload": button.get("payload", ""),
                             "text": button.get("text", button.get("payload", ""))}
        else:
            msg["type"] = "text"
            msg["text"] = {"body": text or ""}
        value = {"messaging_product": "whatsapp", "metadata": md,
                 "contacts": [{"profile": {"name": name or sender}, "wa_id": sender}],
                 "messages": [msg]}
        return phone["waba_id"], wamid, envelope(phone["waba_id"], "messages", value)

    def echo_webhook(self, phone_id, to, text):
        """Build a §2.5 ``smb_message_echoes`` webhook (the business replied from the app).

        :return: ``(waba_id, wamid, payload)``.
        """
        with self.lock:
            phone = self.phones[str(phone_id)]
            md = phone_metadata(phone)
        wamid = new_wamid(digits(to))
        value = {"messaging_product": "whatsapp", "metadata": md, "message_echoes": [{
            "from": md["display_phone_number"], "to": str(to), "id": wamid,
            "timestamp": str(int(time.time())), "type": "text", "text": {"body": text or ""}}]}
        return phone["waba_id"], wamid, envelope(phone["waba_id"], "smb_message_echoes", value)

    def template_status_webhook(self, waba_id, tpl, reason="NONE"):
        """Build a §2.7 ``message_template_status_update`` webhook.

        :rtype: dict
        """
        value = {"event": tpl["status"], "message_template_id": int(tpl["id"]),
                 "message_template_name": tpl["name"],
                 "message_template_language": tpl["language"], "reason": reason or "NONE",
                 "message_template_category": tpl["category"]}
        if tpl["status"] == "DISABLED":
            value["disable_info"] = {"disable_date": str(int(time.time()))}
        return envelope(waba_id, "message_template_status_update", value, with_time=True)

    # -- faults ----------------------------------------------------------------------------

    def add_faults(self, faults):
        """Append faults (dicts, see :func:`normalise_fault`); return their ids.

        :rtype: list
        """
        faults = faults if isinstance(faults, list) else [faults]
        with self.lock:
            ids = []
            staged = []
            for fault in faults:
                self._fault_seq += 1
                staged.append(normalise_fault(fault, self._fault_seq))
                ids.append(self._fault_seq)
            self.faults.extend(staged)
            return ids

    def take_fault(self, method, path):
        """Consume and return the first live fault matching the request, or ``None``."""
        with self.lock:
            for fault in self.faults:
                match = fault["match"]
                if match["method"] and match["method"] != method:
                    continue
                if match["path"] and match["path"] not in path:
                    continue
                fault["hits"] += 1
                if fault["times"] is not None:
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        self.faults.remove(fault)
                return dict(fault)
        return None

    def clear_faults(self):
        """Forget every fault."""
        with self.lock:
            self.faults = []

    def list_faults(self):
        """Return copies of the live faults.

        :rtype: list
        """
        with self.lock:
            return copy.deepcopy(self.faults)

    # -- records -----------------------------------------------------------------------------

    def record(self, entry):
        """Append one recorded request."""
        with self.lock:
            self.records.append(entry)

    def list_requests(self, path_contains=None, method=None):
        """Return recorded requests, oldest first, optionally filtered.

        :rtype: list
        """
        with self.lock:
            items = list(self.records)
        if path_contains:
            items = [r for r in items if path_contains in r["path"]]
        if method:
            items = [r for r in items if r["method"] == method.upper()]
        return copy.deepcopy(items)

    def clear_requests(self):
        """Forget recorded requests."""
        with self.lock:
            self.records.clear()

    def log_webhook(self, entry):
        """Append one webhook delivery outcome."""
        with self.lock:
            self.webhook_log.append(entry)

    def list_messages(self, phone_number_id=None):
        """Return the recorded sent messages, oldest first.

        :rtype: list
        """
        with self.lock:
            items = [copy.deepcopy(m) for m in self.messages.values()
                     if phone_number_id is None or m["phone_number_id"] == str(phone_number_id)]
        for item in items:
            item.pop("plan", None)
        return items

    def snapshot(self):
        """Return the whole state as JSON-able data, secrets masked.

        :rtype: dict
        """
        with self.lock:
            wabas = []
            for waba in self.wabas.values():
                w = {k: copy.deepcopy(v) for k, v in waba.items()
                     if k not in ("phone_ids", "template_ids")}
                if w.get("subscription") and w["subscription"].get("verify_token"):
                    w["subscription"]["verify_token"] = mask(w["subscription"]["verify_token"])
                w["phone_numbers"] = [
                    dict({k: copy.deepcopy(v) for k, v in self.phones[p].items()
                          if k not in ("history", "contacts")},
                         contacts=len(self.phones[p]["contacts"]),
                         history_threads=len(self.phones[p]["history"]))
                    for p in waba["phone_ids"]]
                w["templates"] = [self.template_view(self.templates[t], DEFAULT_TEMPLATE_FIELDS)
                                  for t in waba["template_ids"]]
                wabas.append(w)
            return {
                "app": {"app_id": self.app["app_id"], "name": self.app["name"],
                        "app_secret": mask(self.app["app_secret"])},
                "config": copy.deepcopy(self.config),
                "wabas": wabas,
                "tokens": [{"token": mask(t["token"]), "source": t["source"],
                            "waba_ids": sorted(t["waba_ids"])} for t in self.tokens.values()],
                "codes": [{"code": mask(c["code"]), "waba_id": c["waba_id"],
                           "phone_number_id": c["phone_number_id"], "used": c["used"],
                           "ttl": c["ttl"]} for c in self.codes.values()],
                "messages": self.list_messages()[-100:],
                "faults": copy.deepcopy(self.faults),
                "webhook_log": list(self.webhook_log),
                "requests": len(self.records),
            }


def _history_thread(phone, business, thread, onboard, followups):
    """One thread's messages as history items, by phase (0: the last day, 1: up to 90 days,
    2: up to 180 days; older ones are not synced), its media follow-ups appended to
    ``followups``.

    :rtype: dict
    """
    by_phase = {0: [], 1: [], 2: []}
    for index, m in enumerate(thread.get("messages", [])):
        age = float(m.get("age_seconds", 0))
        if age > 180 * 86400:
            continue  # Meta syncs 180 days only
        phase = 0 if age <= 86400 else 1 if age <= 90 * 86400 else 2
        sender = business if m.get("from_me") else thread["id"]
        wamid = new_wamid(thread["id"], f"{phone['id']}/{thread['id']}/{index}")
        item = {"from": sender, "id": wamid, "timestamp": str(int(onboard - age)),
                "type": m.get("type", "text")}
        if item["type"] == "text":
            item["text"] = {"body": m.get("text", "")}
        item["history_context"] = {"status": m.get("status", "READ")}
        by_phase[phase].append(item)
        media = m.get("media")
        if item["type"] == "media_placeholder" and media and age <= 14 * 86400:
            kind = media.get("type", "image")
            followups.append({"from": sender, "id": wamid,
                              "timestamp": item["timestamp"], "type": kind,
                              kind: {k: v for k, v in media.items() if k != "type"}})
    return by_phase


class HistoryChunk(NamedTuple):
    """One ``history`` webhook's threads, and where it stands in the sync."""

    phase: int
    order: int
    threads: list


def _history_chunks(phases, per_chunk):
    """Every :class:`HistoryChunk`, phase by phase, at most ``per_chunk`` threads each; one
    empty chunk when nothing is shared.

    :rtype: list[HistoryChunk]
    """
    chunks = []
    for phase in (0, 1, 2):
        group = phases[phase]
        for order, i in enumerate(range(0, len(group), per_chunk), start=1):
            chunks.append(HistoryChunk(phase, order, group[i:i + per_chunk]))
    if not chunks:
        # Nothing to share still has to end the sync at 100 %.
        chunks.append(HistoryChunk(2, 1, []))
    return chunks


def _url(base_url, params):
    return base_url + "?" + urlencode(params)
