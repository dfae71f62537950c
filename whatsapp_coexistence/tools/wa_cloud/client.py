"""A small Graph API client for the WhatsApp Cloud API endpoints this addon uses.

Every HTTP request goes through :meth:`GraphClient._send`, the only place that calls
``requests``. Tests and the Odoo side patch that one seam (or point ``base_url`` at a local fake
Graph server). Errors are raised as :mod:`.errors` classes, with credentials masked.
"""

import json as jsonlib
import logging
import re
from dataclasses import dataclass, field

import requests

from .errors import AuthError, PermanentError, TransportError, error_from_response
from .media_limits import CAPTION_LIMIT, KINDS, OUTBOUND_KINDS, check_media, normalize_mime

_logger = logging.getLogger(__name__)

DEFAULT_VERSION = "v25.0"
DEFAULT_BASE_URL = "https://graph.facebook.com"
PHONE_NUMBER_FIELDS = (
    "verified_name",
    "display_phone_number",
    "quality_rating",
    "code_verification_status",
    "platform_type",
    "is_on_biz_app",
    "throughput",
    "name_status",
)
#: Fields of the hourly health check: one ``GET /<PHONE_NUMBER_ID>`` answers all of them.
HEALTH_PHONE_FIELDS = (
    "status",
    "quality_rating",
    "name_status",
    "messaging_limit_tier",
    "display_phone_number",
)
#: Accepted ``sync_type`` values of ``POST /<PHONE_NUMBER_ID>/smb_app_data`` (coexistence).
SMB_SYNC_TYPES = ("smb_app_state_sync", "history")

# Graph object ids are numeric; refusing anything else keeps a stored value from rewriting the
# request path (e.g. "123/../oauth").
_ID_RE = re.compile(r"[0-9A-Za-z_-]{1,64}")


def _object_id(value, name="id"):
    value = str(value or "").strip()
    if not _ID_RE.fullmatch(value):
        raise ValueError(f"invalid Graph {name}")
    return value


@dataclass(frozen=True)
class SendResult:
    """Outcome of ``POST /<PHONE_NUMBER_ID>/messages``.

    :ivar wamid: id of the accepted message (``messages[0].id``)
    :ivar message_status: ``accepted`` or ``held_for_quality_assessment`` (template pacing)
    :ivar input: the ``to`` we sent, as Meta echoes it (``contacts[0].input``)
    :ivar wa_id: the WhatsApp id Meta resolved; it may differ from ``input`` (Brazil's 9th
        digit), so store both
    :ivar raw: the whole response
    """

    wamid: str | None
    message_status: str | None
    input: str | None
    wa_id: str | None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class TokenHealth:
    """What ``GET /debug_token`` says about an access token.

    :ivar is_valid: Meta still accepts the token
    :ivar expires_at: expiry as a Unix timestamp, or ``None`` when it never expires (``0``: a
        System User token)
    :ivar app_id: the app the token belongs to
    :ivar token_type: ``SYSTEM_USER``, ``USER``...
    :ivar error: Meta's reason when the token is invalid (message, never the token)
    """

    is_valid: bool
    expires_at: int | None
    app_id: str | None
    token_type: str | None
    error: str | None = None

    @classmethod
    def from_response(cls, body):
        """Build from the ``debug_token`` answer; a missing ``data`` means an invalid token.

        :param dict body: the whole answer (``{"data": {...}}``)
        :rtype: TokenHealth
        """
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        try:
            expires = int(data.get("expires_at") or 0)
        except (TypeError, ValueError):
            expires = 0
        return cls(
            is_valid=bool(data.get("is_valid")),
            expires_at=expires or None,
            app_id=str(data["app_id"]) if data.get("app_id") else None,
            token_type=data.get("type"),
            error=error.get("message"),
        )


class GraphClient:
    """Graph API client bound to one access token (one tenant) and one API version.

    :param access_token: business (system user) token of the tenant; may be ``None`` for
        app-level calls such as :meth:`exchange_code`
    :param version: Graph version, e.g. ``"v25.0"``
    :param base_url: Graph host, overridable to point at a fake server
    :param timeout: ``(connect, read)`` seconds passed to ``requests``
    :param session: a ``requests.Session``-like object (default: a new session on first use)
    :param app_id: Meta app id, needed by :meth:`exchange_code`
    :param app_secret: Meta app secret, needed by :meth:`exchange_code`
    :param user_agent: ``User-Agent`` header value
    """

    def __init__(
        self,
        access_token=None,
        *,
        version=DEFAULT_VERSION,
        base_url=DEFAULT_BASE_URL,
        timeout=(5, 20),
        session=None,
        app_id=None,
        app_secret=None,
        user_agent="whatsapp_coexistence",
    ):
        self._access_token = access_token or None
        self._app_secret = app_secret or None
        self.version = version
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session
        self.app_id = app_id
        self.user_agent = user_agent

    def __repr__(self):
        token = "set" if self._access_token else "unset"
        return f"<GraphClient {self.base_url}/{self.version} app_id={self.app_id} token={token}>"

    @property
    def has_token(self):
        """``True`` when an access token is configured."""
        return bool(self._access_token)

    # ------------------------------------------------------------------
    # Transport
    # ------------------------------------------------------------------

    def _send(self, method, url, *, params, json, headers, timeout, data=None, files=None):
        """Perform one HTTP request; the only method that touches ``requests``.

        Exceptions of ``requests`` propagate; :meth:`_request` maps them.

        :param dict data: form fields of a ``multipart/form-data`` body (with ``files``)
        :param dict files: ``{field: (filename, bytes or file object, mime type)}``
        :returns: ``(status_code, headers, body_bytes)``
        :rtype: tuple[int, dict, bytes]
        """
        if self.session is None:
            self.session = requests.Session()
        response = self.session.request(
            method, url, params=params, json=json, headers=headers, timeout=timeout,
            data=data, files=files,
        )
        return response.status_code, dict(response.headers), response.content

    def _secrets(self, extra=()):
        return tuple(s for s in (self._access_token, self._app_secret, *extra) if s)

    def _request(self, method, path, *, params=None, json=None, auth=True, secrets=(),
                 data=None, files=None):
        """Call Graph and return the parsed JSON object.

        :param str method: HTTP verb
        :param str path: path after the version, e.g. ``"123/messages"``
        :param dict params: query string
        :param dict json: JSON body
        :param dict data: form fields of a multipart body (see :meth:`_send`)
        :param dict files: files of a multipart body (see :meth:`_send`)
        :param bool auth: send ``Authorization: Bearer <token>``
        :param secrets: request-specific secrets to mask in errors (OAuth code, PIN)
        :raises WaCloudError: on transport failure, non-2xx or a body with an ``error`` key
        :rtype: dict
        """
        all_secrets = self._secrets(secrets)
        url = f"{self.base_url}/{self.version}/{path.lstrip('/')}"
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if auth:
            if not self._access_token:
                raise AuthError("No access token configured")
            headers["Authorization"] = f"Bearer {self._access_token}"
        try:
            status, _headers, content = self._send(
                method, url, params=params, json=json, headers=headers, timeout=self.timeout,
                data=data, files=files,
            )
        except requests.Timeout:
            # ``from None``: the requests exception text contains the full URL, and the query
            # string of oauth/access_token carries client_secret and code.
            raise TransportError(
                f"Timeout calling Graph API ({method} {_log_path(path)})"
            ) from None
        except requests.RequestException as exc:
            raise TransportError(
                f"Cannot reach Graph API ({type(exc).__name__}, {method} {_log_path(path)})"
            ) from None
        _logger.debug("Graph %s %s -> %s", method, _log_path(path), status)

        try:
            body = jsonlib.loads(content) if content else None
        except (ValueError, UnicodeDecodeError):
            body = None
        if not 200 <= status < 300:
            if body is None and status >= 500:
                raise TransportError(f"HTTP {status} without a JSON body", http_status=status)
            raise error_from_response(status, body, secrets=all_secrets)
        if isinstance(body, dict) and "error" in body:
            raise error_from_response(status, body, secrets=all_secrets)
        if not isinstance(body, dict):
            raise PermanentError(
                f"Unexpected response from Graph API ({method} {_log_path(path)})",
                http_status=status,
            )
        return body

    # ------------------------------------------------------------------
    # Phone numbers
    # ------------------------------------------------------------------

    def get_phone_number(self, phone_number_id, fields=PHONE_NUMBER_FIELDS):
        """``GET /<PHONE_NUMBER_ID>?fields=...``.

        ``is_on_biz_app: true`` with ``platform_type: CLOUD_API`` means coexistence is active.

        :rtype: dict
        """
        params = {"fields": ",".join(fields)} if fields else None
        return self._request("GET", _object_id(phone_number_id, "phone number id"), params=params)

    def get_phone_health(self, phone_number_id):
        """``GET /<PHONE_NUMBER_ID>?fields=status,quality_rating,...``: the number's health.

        ``status`` is ``CONNECTED`` while the number can send; ``messaging_limit_tier`` is the
        business-initiated limit (``TIER_250`` ... ``TIER_UNLIMITED``).

        :rtype: dict
        """
        return self.get_phone_number(phone_number_id, fields=HEALTH_PHONE_FIELDS)

    def list_phone_numbers(self, waba_id):
        """``GET /<WABA_ID>/phone_numbers``: the phone numbers of a WhatsApp Business Account.

        The coexistence Embedded Signup session event may carry only the WABA id, so the phone
        number id is resolved here.

        :rtype: list[dict]
        """
        return list(self._paginate(f"{_object_id(waba_id, 'WABA id')}/phone_numbers", {}))

    def _paginate(self, path, params):
        seen = set()
        while True:
            body = self._request("GET", path, params=params)
            data = body.get("data")
            if isinstance(data, list):
                yield from (item for item in data if isinstance(item, dict))
            paging = body.get("paging") if isinstance(body.get("paging"), dict) else {}
            cursors = paging.get("cursors") if isinstance(paging.get("cursors"), dict) else {}
            after = cursors.get("after")
            # Graph omits ``paging.next`` on the last page but may still return cursors.
            if not paging.get("next") or not after or after in seen:
                return
            seen.add(after)
            # A new dict per page: recorders of the ``_send`` seam keep a reference to it.
            params = {**params, "after": after}

    # ------------------------------------------------------------------
    # Messages
    # ------------------------------------------------------------------

    def send_message(self, phone_number_id, payload):
        """``POST /<PHONE_NUMBER_ID>/messages`` with an already built payload.

        :param dict payload: e.g. from :meth:`build_template_payload`
        :raises PermanentError: when the 2xx answer has no message id
        :rtype: SendResult
        """
        body = self._request(
            "POST", f"{_object_id(phone_number_id, 'phone number id')}/messages", json=payload
        )
        messages = body.get("messages")
        contacts = body.get("contacts")
        message = messages[0] if isinstance(messages, list) and messages else {}
        contact = contacts[0] if isinstance(contacts, list) and contacts else {}
        message = message if isinstance(message, dict) else {}
        contact = contact if isinstance(contact, dict) else {}
        if not message.get("id"):
            raise PermanentError("Graph accepted the message but returned no message id")
        return SendResult(
            wamid=message.get("id"),
            message_status=message.get("message_status"),
            input=contact.get("input"),
            wa_id=contact.get("wa_id"),
            raw=body,
        )

    @staticmethod
    def build_template_payload(to, name, language, components=None, biz_opaque_callback_data=None):
        """Build a template message payload (reference §4.1).

        :param str to: recipient: E.164 digits (a leading ``+`` is accepted by Meta) or a BSUID
        :param str name: approved template name
        :param str language: template language code, e.g. ``"pt_BR"``
        :param list components: header/body/button components with their parameters
        :param str biz_opaque_callback_data: echoed back in status webhooks, to tie them to a
            record (e.g. ``"appointment:42:reminder"``)
        :rtype: dict
        """
        template = {"name": name, "language": {"policy": "deterministic", "code": language}}
        if components:
            template["components"] = list(components)
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": template,
        }
        if biz_opaque_callback_data:
            payload["biz_opaque_callback_data"] = biz_opaque_callback_data
        return payload

    # ------------------------------------------------------------------
    # Outbound media: upload, then send by id
    # ------------------------------------------------------------------

    def upload_media(self, phone_number_id, content, mime_type, filename):
        """``POST /<PHONE_NUMBER_ID>/media`` (multipart): upload a file, get its media id.

        The file is checked against Meta's type and size rules first
        (:func:`.media_limits.check_media`), so a file Meta would refuse never leaves. Meta keeps
        an uploaded file for 30 days; the id is then usable in messages of this number.
        https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#upload-media

        :param str phone_number_id: the sending number
        :param content: the file, as ``bytes`` or a binary file object positioned at its start
            (streamed by ``requests``, never read whole here)
        :param str mime_type: its MIME type (sent as the ``type`` field and the part's type)
        :param str filename: its name
        :raises MediaRejected: when Meta would refuse the type or size
        :raises PermanentError: when the 2xx answer has no id
        :returns: the media id
        :rtype: str
        """
        mime = normalize_mime(mime_type)
        check_media(mime, _content_size(content))
        body = self._request(
            "POST",
            f"{_object_id(phone_number_id, 'phone number id')}/media",
            data={"messaging_product": "whatsapp", "type": mime},
            files={"file": (filename or "file", content, mime)},
        )
        media_id = body.get("id")
        if not media_id or not isinstance(media_id, str):
            raise PermanentError("Graph accepted the upload but returned no media id")
        return media_id

    @staticmethod
    def build_media_payload(to, kind, media_id, caption=None, filename=None,
                            biz_opaque_callback_data=None, context_wamid=None):
        """Build an image, document, audio or video message that refers to an uploaded file.

        Meta allows a caption on images, videos and documents (not on audio) and a file name on
        documents only: what a kind does not allow is left out rather than refused.
        https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages#media-object

        :param str to: recipient, as for :meth:`build_template_payload`
        :param str kind: ``"image"``, ``"document"``, ``"audio"`` or ``"video"``
        :param str media_id: id returned by :meth:`upload_media`
        :param str caption: text shown under the media (at most 1,024 characters)
        :param str filename: the name the customer sees on a document
        :param str biz_opaque_callback_data: echoed back in status webhooks
        :param str context_wamid: the message this one answers (a quoted reply)
        :raises ValueError: unknown kind, missing id or a caption over Meta's limit
        :rtype: dict
        """
        spec = KINDS.get(kind)
        if kind not in OUTBOUND_KINDS or spec is None:
            raise ValueError(f"kind must be one of {', '.join(OUTBOUND_KINDS)}")
        media = {"id": _object_id(media_id, "media id")}
        if caption and spec.caption:
            if len(caption) > CAPTION_LIMIT:
                raise ValueError(f"a caption holds at most {CAPTION_LIMIT} characters")
            media["caption"] = caption
        if filename and spec.filename:
            media["filename"] = filename
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": kind,
            kind: media,
        }
        if context_wamid:
            payload["context"] = {"message_id": context_wamid}
        if biz_opaque_callback_data:
            payload["biz_opaque_callback_data"] = biz_opaque_callback_data
        return payload

    # ------------------------------------------------------------------
    # Templates
    # ------------------------------------------------------------------

    def iter_templates(self, waba_id, *, limit=100, fields=None):
        """Yield the message templates of a WABA, following ``paging.cursors.after``.

        :param int limit: page size
        :param fields: optional iterable of template fields to request
        :rtype: Iterator[dict]
        """
        params = {"limit": limit}
        if fields:
            params["fields"] = ",".join(fields)
        yield from self._paginate(f"{_object_id(waba_id, 'WABA id')}/message_templates", params)

    def create_template(self, waba_id, payload):
        """``POST /<WABA_ID>/message_templates``; Meta allows 100 creations per WABA per hour.

        :returns: ``{"id", "status", "category"}``
        :rtype: dict
        """
        return self._request(
            "POST", f"{_object_id(waba_id, 'WABA id')}/message_templates", json=payload
        )

    # ------------------------------------------------------------------
    # Webhook subscription
    # ------------------------------------------------------------------

    def subscribe_app(self, waba_id, override_callback_uri=None, verify_token=None):
        """``POST /<WABA_ID>/subscribed_apps``: deliver this WABA's webhooks to our app.

        Without this call, webhooks "silently" never arrive for the tenant (reference §5.7).

        :param override_callback_uri: optional per-WABA callback URL; needs ``verify_token``
        :rtype: bool
        """
        body = None
        if override_callback_uri:
            if not verify_token:
                raise ValueError("verify_token is required with override_callback_uri")
            body = {"override_callback_uri": override_callback_uri, "verify_token": verify_token}
        result = self._request(
            "POST",
            f"{_object_id(waba_id, 'WABA id')}/subscribed_apps",
            json=body,
            secrets=(verify_token,) if verify_token else (),
        )
        return bool(result.get("success"))

    def unsubscribe_app(self, waba_id):
        """``DELETE /<WABA_ID>/subscribed_apps``.

        :rtype: bool
        """
        result = self._request("DELETE", f"{_object_id(waba_id, 'WABA id')}/subscribed_apps")
        return bool(result.get("success"))

    def list_subscribed_apps(self, waba_id):
        """``GET /<WABA_ID>/subscribed_apps``.

        :rtype: list[dict]
        """
        result = self._request("GET", f"{_object_id(waba_id, 'WABA id')}/subscribed_apps")
        data = result.get("data")
        return data if isinstance(data, list) else []

    def is_app_subscribed(self, waba_id, app_id):
        """Whether ``app_id`` is among the apps subscribed to the WABA's webhooks.

        An app that drops out of this list silently stops receiving the WABA's webhooks: the
        first thing to check when they stop (reference §5.7).

        :rtype: bool
        """
        app_id = str(app_id or "")
        return any(
            str((item.get("whatsapp_business_api_data") or {}).get("id") or "") == app_id
            for item in self.list_subscribed_apps(waba_id)
            if isinstance(item, dict)
        )

    def debug_token(self, input_token=None):
        """``GET /debug_token?input_token=...`` with the app token (``app_id|app_secret``).

        A System User token answers ``expires_at: 0`` (it never expires); a user token has a
        date. An invalid token is an answer (``is_valid: false``), not an error.
        https://developers.facebook.com/docs/graph-api/reference/debug_token

        :param str input_token: the token to inspect (a secret: masked in errors); defaults to
            this client's own token
        :rtype: TokenHealth
        """
        input_token = input_token or self._access_token
        if not (self.app_id and self._app_secret):
            raise ValueError("app_id and app_secret are required to debug a token")
        if not input_token:
            raise ValueError("input_token is required")
        app_token = f"{self.app_id}|{self._app_secret}"
        body = self._request(
            "GET",
            "debug_token",
            params={"input_token": input_token, "access_token": app_token},
            auth=False,
            secrets=(input_token, app_token),
        )
        return TokenHealth.from_response(body)

    # ------------------------------------------------------------------
    # Embedded Signup / coexistence onboarding
    # ------------------------------------------------------------------

    def exchange_code(self, code):
        """Exchange an Embedded Signup code for the tenant's business token.

        ``GET /oauth/access_token?client_id&client_secret&code``, without ``redirect_uri`` nor
        ``grant_type``. The code lives 30 seconds, so there is no retry here.
        https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/onboarding-customers-as-a-tech-provider

        :param str code: the code from ``FB.login``'s ``authResponse``
        :returns: the access token (a secret: never log it)
        :rtype: str
        """
        if not (self.app_id and self._app_secret):
            raise ValueError("app_id and app_secret are required to exchange a code")
        if not code:
            raise ValueError("code is required")
        body = self._request(
            "GET",
            "oauth/access_token",
            params={"client_id": self.app_id, "client_secret": self._app_secret, "code": code},
            auth=False,
            secrets=(code,),
        )
        token = body.get("access_token")
        if not token or not isinstance(token, str):
            raise PermanentError("Graph returned no access token for the code")
        return token

    def request_smb_app_data(self, phone_number_id, sync_type):
        """``POST /<PHONE_NUMBER_ID>/smb_app_data``: start a coexistence sync.

        Each ``sync_type`` can be requested once, within 24 hours of onboarding; contacts
        (``smb_app_state_sync``) first, then ``history``. The answer only means "accepted":
        the data (or error 2593109) arrives by webhook.

        :param str sync_type: ``"smb_app_state_sync"`` or ``"history"``
        :returns: Meta's ``request_id`` (keep it for support tickets)
        :rtype: str
        """
        if sync_type not in SMB_SYNC_TYPES:
            raise ValueError(f"sync_type must be one of {', '.join(SMB_SYNC_TYPES)}")
        body = self._request(
            "POST",
            f"{_object_id(phone_number_id, 'phone number id')}/smb_app_data",
            json={"messaging_product": "whatsapp", "sync_type": sync_type},
        )
        return body.get("request_id")

    def register_phone_number(self, phone_number_id, pin):
        """``POST /<PHONE_NUMBER_ID>/register`` with the two-step verification PIN.

        Not used for coexistence: "skip the phone number registration step, as the number is
        already registered".

        :param str pin: 6-digit PIN
        :rtype: bool
        """
        pin = str(pin or "")
        if not re.fullmatch(r"\d{6}", pin):
            raise ValueError("pin must be 6 digits")
        body = self._request(
            "POST",
            f"{_object_id(phone_number_id, 'phone number id')}/register",
            json={"messaging_product": "whatsapp", "pin": pin},
            secrets=(pin,),
        )
        return bool(body.get("success"))


def _content_size(content):
    """Size in bytes of ``bytes`` or of a seekable file object (its position is kept)."""
    if isinstance(content, (bytes, bytearray, memoryview)):
        return len(content)
    position = content.tell()
    content.seek(0, 2)
    size = content.tell() - position
    content.seek(position)
    return size


def _log_path(path):
    """Path without query string, safe for messages and logs."""
    return path.split("?", 1)[0]
