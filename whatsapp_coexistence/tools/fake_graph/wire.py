"""Wire formats of the fake Graph API: its settings, errors, field lists and payload builders.

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
import time

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


def new_numeric_id(taken):
    while True:
        value = str(secrets.randbelow(9 * 10**15) + 10**15)
        if value not in taken:
            return value


def encode_cursor(value):
    return base64.urlsafe_b64encode(("c:" + value).encode()).decode().rstrip("=")


def decode_cursor(cursor):
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
