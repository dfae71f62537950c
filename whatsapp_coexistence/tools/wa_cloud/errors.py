"""Graph / WhatsApp Cloud API errors, sorted by what the caller must do about them.

Three kinds, in the spirit of OCA ``connector/exception.py``:

* ``retryable``: try again later (throughput limits, downtime, timeouts);
* ``permanent``: this message or request will never succeed as it is (bad data, undeliverable
  recipient, template mismatch); record it where a person can see it;
* ``tenant_blocking``: every further call for this tenant will fail (revoked token, missing
  permission, locked or unpaid account): stop the tenant's queue and ask a person.

Meta asks integrators to "build your app's error handling logic around ``code`` values and
``details``" and not to rely on titles: :data:`DOC_URL`.

Messages are sanitized (:func:`sanitize`) because Graph sometimes echoes request parameters,
including access tokens, back in error messages.
"""

import re
from typing import NamedTuple
from urllib.parse import quote, quote_plus

DOC_URL = (
    "https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes/"
)

RETRYABLE = "retryable"
PERMANENT = "permanent"
TENANT_BLOCKING = "tenant_blocking"
KINDS = (RETRYABLE, PERMANENT, TENANT_BLOCKING)

#: History sharing turned off in the WhatsApp Business app (``history`` webhook error).
HISTORY_DECLINED_CODE = 2593109

MAX_MESSAGE_LENGTH = 500
REDACTED = "[redacted]"

# ---------------------------------------------------------------------------
# Sanitizing
# ---------------------------------------------------------------------------

# Graph user/system-user access tokens start with "EAA" followed by a long alphanumeric run.
_GRAPH_TOKEN_RE = re.compile(r"EAA[A-Za-z0-9]{20,}")
# Query parameters that carry credentials (oauth/access_token takes client_secret and code in the
# query string): https://developers.facebook.com/docs/facebook-login/guides/access-tokens/
_SECRET_PARAM_RE = re.compile(
    r"(?i)\b(access_token|client_secret|appsecret_proof|fb_exchange_token|input_token)=[^&\s\"']+"
)
_CODE_PARAM_RE = re.compile(r"(?i)([?&]code=)[^&\s\"']+")
_LONG_RUN_RE = re.compile(r"[A-Za-z0-9+/_=-]{32,}")
_HEX_RE = re.compile(r"[0-9a-fA-F]{32,}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")
# Graph prefixes messages with "(#<code>) "; we show the code ourselves.
_CODE_PREFIX_RE = re.compile(r"^\(#\d+\)\s*")
# Secrets shorter than this are not masked: they would not be credentials, and masking e.g. "1"
# would garble every number in the message.
_MIN_SECRET_LENGTH = 4


def _mask_long_run(match):
    run = match.group(0)
    # A long run that mixes letters and digits looks like key material (base64, hex digest,
    # wamid); a run of letters only is a URL path such as Meta's ``href`` and is kept readable.
    if _HEX_RE.fullmatch(run) or (re.search(r"[0-9]", run) and re.search(r"[A-Za-z]", run)):
        return REDACTED
    return run


def sanitize(text, secrets=()):
    """Return ``text`` safe to show, store or log.

    Masks every string of ``secrets`` (also in URL-encoded form), Graph access tokens
    (``EAA...``), credential query parameters, and hex/base64 runs of 32 characters or more;
    replaces control characters (no log-line injection) and truncates to
    :data:`MAX_MESSAGE_LENGTH` characters.

    :param text: anything; ``None`` gives ``""``, other objects are converted with ``str()``
    :param secrets: iterable of secret strings (tokens, app secret, OAuth code) to mask
    :rtype: str
    """
    if text is None:
        return ""
    text = str(text)
    for raw_secret in secrets or ():
        if not raw_secret:
            continue
        secret = raw_secret.decode() if isinstance(raw_secret, bytes) else str(raw_secret)
        if len(secret) < _MIN_SECRET_LENGTH:
            continue
        for form in {secret, quote(secret, safe=""), quote_plus(secret, safe="")}:
            text = text.replace(form, REDACTED)
    text = _GRAPH_TOKEN_RE.sub(REDACTED, text)
    text = _SECRET_PARAM_RE.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _CODE_PARAM_RE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _LONG_RUN_RE.sub(_mask_long_run, text)
    text = _CONTROL_RE.sub(" ", text).strip()
    if len(text) > MAX_MESSAGE_LENGTH:
        text = text[: MAX_MESSAGE_LENGTH - 1] + "…"
    return text


# ---------------------------------------------------------------------------
# Exception hierarchy
# ---------------------------------------------------------------------------


class WaCloudError(Exception):
    """Base class of every error raised by :mod:`wa_cloud` for Graph calls.

    Every text attribute is sanitized at construction, so the exception can be logged, shown and
    stored (:meth:`to_dict`) without leaking a credential.

    :ivar code: Graph / WhatsApp error code (``int``) or ``None``
    :ivar subcode: ``error_subcode`` or ``None``
    :ivar http_status: HTTP status of the response, ``None`` for webhook errors and transport errors
    :ivar title: short sanitized title (Meta's title, message or our meaning of the code)
    :ivar details: sanitized ``error_data.details``
    :ivar fbtrace_id: Meta's trace id, to quote in support tickets
    :ivar kind: ``'retryable'``, ``'permanent'`` or ``'tenant_blocking'`` (class attribute)
    :ivar retry_after: suggested delay in seconds before a retry, or ``None``
    :ivar ignore_retry: ``True`` when waiting must not consume a job retry (throughput limits)
    :ivar doc_url: where the code is documented
    """

    kind = PERMANENT
    ignore_retry = False

    def __init__(
        self,
        message="",
        *,
        code=None,
        subcode=None,
        http_status=None,
        title=None,
        details=None,
        fbtrace_id=None,
        retry_after=None,
        ignore_retry=None,
        doc_url=DOC_URL,
        error_type=None,
        secrets=(),
    ):
        self.code = _to_int(code)
        self.subcode = _to_int(subcode)
        self.http_status = _to_int(http_status)
        self.title = sanitize(_CODE_PREFIX_RE.sub("", str(title or message or "")), secrets) or None
        self.details = sanitize(details, secrets) or None
        self.fbtrace_id = sanitize(fbtrace_id) or None
        self.error_type = sanitize(error_type) or None
        self.retry_after = retry_after
        if ignore_retry is not None:
            self.ignore_retry = bool(ignore_retry)
        self.doc_url = doc_url
        self.message = self._format()
        super().__init__(self.message)

    def _format(self):
        title = (self.title or "").rstrip(" .")
        if not title and self.code is not None:
            title = meaning(self.code) or ""
        if not title and self.http_status:
            title = f"HTTP {self.http_status}"
        text = f"{title}: {self.details}" if self.details else title or "Graph API error"
        if self.code is not None:
            text = f"[{self.code}] {text}"
        return sanitize(text)

    def __str__(self):
        return self.message

    def __repr__(self):
        return (
            f"{type(self).__name__}(code={self.code!r}, http_status={self.http_status!r}, "
            f"message={self.message!r})"
        )

    def to_dict(self):
        """Return a JSON-serializable dict for a log row (no secret, everything sanitized).

        :rtype: dict
        """
        return {
            "error_class": type(self).__name__,
            "kind": self.kind,
            "code": self.code,
            "subcode": self.subcode,
            "http_status": self.http_status,
            "title": self.title,
            "details": self.details,
            "message": self.message,
            "error_type": self.error_type,
            "fbtrace_id": self.fbtrace_id,
            "retry_after": self.retry_after,
            "ignore_retry": self.ignore_retry,
            "doc_url": self.doc_url,
        }


class RetryableError(WaCloudError):
    """Temporary failure: retry later, with backoff (or after :attr:`retry_after` seconds)."""

    kind = RETRYABLE


class ThrottlingError(RetryableError):
    """A throughput or rate limit was hit.

    Waiting for the limit is normal operation, so a job should be postponed without consuming one
    of its retries (``RetryableJobError(seconds=retry_after, ignore_retry=True)`` in queue_job).
    """

    ignore_retry = True


class TransportError(RetryableError):
    """No usable answer from Graph: timeout, connection error, or a 5xx without a JSON body.

    The request may or may not have reached Meta; sends must therefore be idempotent upstream.
    """


class PermanentError(WaCloudError):
    """This request will not succeed as it is: do not retry, record it for a person."""

    kind = PERMANENT


class RecipientError(PermanentError):
    """The recipient cannot receive this message (undeliverable, opted out, country restriction,
    identity changed...). Other recipients of the same tenant are not affected."""


class TemplateError(PermanentError):
    """The template or its parameters do not match what Meta approved (132xxx)."""


class TenantBlockingError(WaCloudError):
    """Every call for this tenant will fail until a person acts (permissions, account state).

    Stop the tenant's sending queue (kill switch) instead of retrying.
    """

    kind = TENANT_BLOCKING


class AuthError(TenantBlockingError):
    """The access token is missing, expired, invalid or revoked: the tenant must re-authorize."""


# ---------------------------------------------------------------------------
# Code table (reference §4.2; Meta error codes page: DOC_URL)
# ---------------------------------------------------------------------------


class ErrorSpec(NamedTuple):
    """What we know about one error code."""

    kind: str
    cls: type
    meaning: str
    retry_after: float | None = None


def _spec(cls, meaning_text, retry_after=None):
    return ErrorSpec(cls.kind, cls, meaning_text, retry_after)


ERRORS = {
    # Retryable
    1: _spec(RetryableError, "Unknown API error"),
    2: _spec(RetryableError, "API service temporarily unavailable"),
    4: _spec(ThrottlingError, "Application request limit reached", 60),
    80007: _spec(ThrottlingError, "WhatsApp Business Account rate limit reached", 60),
    130429: _spec(ThrottlingError, "Cloud API throughput limit reached", 1),
    131000: _spec(RetryableError, "Something went wrong"),
    131016: _spec(RetryableError, "Service unavailable"),
    # Pair rate limit: about one message every 6 s to the same user in practice (reference §4.3).
    131056: _spec(ThrottlingError, "Too many messages to this recipient (pair rate limit)", 6),
    131057: _spec(RetryableError, "Business account in maintenance mode"),
    132015: _spec(RetryableError, "Template paused because of low quality; retry after the pause"),
    133004: _spec(RetryableError, "Server temporarily unavailable"),
    # Tenant blocking
    0: _spec(AuthError, "Authentication failed: token expired, invalid or revoked"),
    3: _spec(TenantBlockingError, "Capability or permission missing"),
    10: _spec(TenantBlockingError, "Permission denied or revoked"),
    190: _spec(AuthError, "Access token expired or invalid"),
    368: _spec(TenantBlockingError, "Temporarily blocked for policy violations"),
    131005: _spec(TenantBlockingError, "Access denied"),
    131031: _spec(TenantBlockingError, "Business account locked"),
    131042: _spec(TenantBlockingError, "Business payment issue"),
    131044: _spec(TenantBlockingError, "Business payment issue"),
    131045: _spec(TenantBlockingError, "Incorrect certificate or registration error"),
    131048: _spec(TenantBlockingError, "Spam rate limit reached: too many messages blocked"),
    133010: _spec(TenantBlockingError, "Phone number not registered"),
    # Permanent
    100: _spec(PermanentError, "Invalid parameter"),
    130497: _spec(RecipientError, "Business restricted from messaging users in this country"),
    131008: _spec(PermanentError, "Required parameter is missing"),
    131009: _spec(PermanentError, "Parameter value is not valid"),
    131021: _spec(RecipientError, "Recipient cannot be the sender"),
    131026: _spec(RecipientError, "Message undeliverable"),
    131030: _spec(RecipientError, "Recipient not in the allowed list"),
    131047: _spec(RecipientError, "Re-engagement message: more than 24 hours since the last reply"),
    # Per-user marketing limit: retrying soon fails again, so it is permanent for this message.
    131049: _spec(RecipientError, "Not delivered to maintain healthy ecosystem engagement"),
    131050: _spec(RecipientError, "User stopped marketing messages"),
    131051: _spec(PermanentError, "Unsupported message type"),
    131052: _spec(PermanentError, "Media download error"),
    131053: _spec(PermanentError, "Media upload error"),
    # Coexistence: expected on first contact or unsupported companion device (reference §2.1).
    131060: _spec(PermanentError, "Unsupported message"),
    131062: _spec(RecipientError, "Business-scoped user id recipient not supported"),
    131063: _spec(PermanentError, "Marketing templates disabled for the Cloud API"),
    132000: _spec(TemplateError, "Template parameter count mismatch"),
    132001: _spec(TemplateError, "Template does not exist or is not approved"),
    132005: _spec(TemplateError, "Template hydrated text too long"),
    132007: _spec(TemplateError, "Template format character policy violated"),
    132008: _spec(TemplateError, "Template parameter value is not valid"),
    132012: _spec(TemplateError, "Template parameter format mismatch"),
    132016: _spec(TemplateError, "Template disabled"),
    133005: _spec(PermanentError, "Two-step verification PIN mismatch"),
    133006: _spec(PermanentError, "Phone number needs to be verified"),
    133008: _spec(PermanentError, "Too many two-step verification PIN guesses"),
    133009: _spec(PermanentError, "Two-step verification PIN entered too quickly"),
    133016: _spec(PermanentError, "Registration rate limit reached"),
    135000: _spec(PermanentError, "Generic user error"),
    137000: _spec(RecipientError, "Recipient identity key mismatch"),
    HISTORY_DECLINED_CODE: _spec(PermanentError, "History sharing turned off by the business"),
}
# Graph permission errors use the whole 200-299 range.
for _code in range(200, 300):
    ERRORS.setdefault(_code, _spec(TenantBlockingError, "Permission error"))
del _code


def _to_int(value):
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def meaning(code):
    """Return our short description of ``code``, or ``None`` when the code is unknown.

    :rtype: str | None
    """
    spec = ERRORS.get(_to_int(code))
    return spec.meaning if spec else None


def _class_for(code, http_status=None, is_transient=False):
    spec = ERRORS.get(_to_int(code))
    if spec:
        return spec.cls
    status = _to_int(http_status)
    if status == 429:
        return ThrottlingError
    if status is not None and status >= 500:
        return RetryableError
    # Graph flags unknown temporary failures with is_transient:
    # https://developers.facebook.com/docs/graph-api/guides/error-handling/
    if is_transient:
        return RetryableError
    if status == 401:
        return AuthError
    if status == 403:
        return TenantBlockingError
    return PermanentError


def classify(code, http_status=None):
    """Return the kind of an error code: ``'retryable'``, ``'permanent'`` or ``'tenant_blocking'``.

    Known codes (:data:`ERRORS`) win over the HTTP status: e.g. 131048 comes with HTTP 429 but
    blocks the tenant. Unknown codes are classified by HTTP status (429 and 5xx retryable,
    401/403 tenant blocking, other 4xx permanent).

    :param code: Graph error code or ``None``
    :param http_status: HTTP status or ``None``
    :rtype: str
    """
    return _class_for(code, http_status).kind


def make_error(code=None, *, http_status=None, is_transient=False, **kwargs):
    """Build the right :class:`WaCloudError` subclass for ``code`` / ``http_status``.

    :param kwargs: passed to :class:`WaCloudError` (``title``, ``details``, ``secrets``...)
    :rtype: WaCloudError
    """
    cls = _class_for(code, http_status, is_transient)
    spec = ERRORS.get(_to_int(code))
    if kwargs.get("retry_after") is None and spec:
        kwargs["retry_after"] = spec.retry_after
    return cls(code=code, http_status=http_status, **kwargs)


def error_from_response(http_status, body, *, secrets=()):
    """Turn a Graph error response into an exception (returned, not raised).

    Graph errors look like ``{"error": {"message", "type", "code", "error_subcode",
    "error_data": {"details"}, "fbtrace_id"}}``. A body that is not such a dict is classified by
    HTTP status only.

    :param int http_status: HTTP status of the response
    :param body: parsed JSON body, or ``None`` / anything else when not JSON
    :param secrets: strings to mask in every text (token, app secret...)
    :rtype: WaCloudError
    """
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        # OAuth endpoints sometimes answer {"error": "<text>"}.
        error = {"message": error}
    if not isinstance(error, dict):
        return make_error(None, http_status=http_status, secrets=secrets)
    error_data = error.get("error_data")
    details = error_data.get("details") if isinstance(error_data, dict) else None
    return make_error(
        error.get("code"),
        http_status=http_status,
        is_transient=bool(error.get("is_transient")),
        subcode=error.get("error_subcode"),
        title=error.get("error_user_title") or error.get("message"),
        details=details or error.get("error_user_msg"),
        fbtrace_id=error.get("fbtrace_id"),
        error_type=error.get("type"),
        secrets=secrets,
    )
