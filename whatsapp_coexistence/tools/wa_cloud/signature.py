"""Webhook authentication: ``X-Hub-Signature-256`` and the verify token.

Meta signs every webhook POST with HMAC-SHA256 of the payload keyed by the App Secret and sends
``sha256=<hex>``. The signature is computed over the escaped unicode form of the payload (``äöå``
travels as ``\\u00e4\\u00f6\\u00e5``), which is exactly the raw request body: always HMAC the raw
bytes, never re-serialized JSON.
https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/create-webhook-endpoint

Every check fails closed: no secret configured means nothing verifies.
"""

import hashlib
import hmac
import re

PREFIX = "sha256="
_HEX_DIGEST_RE = re.compile(r"[0-9a-fA-F]{64}")


def _key(secret):
    return secret if isinstance(secret, bytes) else str(secret).encode("utf-8")


def sign(body, secret):
    """Return the ``X-Hub-Signature-256`` value Meta would send for ``body``.

    :param bytes body: raw request body
    :param secret: App Secret (``str`` or ``bytes``)
    :rtype: str
    """
    if not secret:
        raise ValueError("secret is required")
    return PREFIX + hmac.new(_key(secret), bytes(body), hashlib.sha256).hexdigest()


def verify(body, header, secret):
    """Check an ``X-Hub-Signature-256`` header against the raw body, in constant time.

    Returns ``False`` when the secret is empty, the header is missing, lacks the ``sha256=``
    prefix, or is not 64 hex digits.

    :param bytes body: raw request body, exactly as received
    :param header: header value or ``None``
    :param secret: App Secret or ``None``
    :rtype: bool
    """
    if not secret or not header or not isinstance(header, str):
        return False
    if not header.startswith(PREFIX):
        return False
    given = header[len(PREFIX) :]
    if not _HEX_DIGEST_RE.fullmatch(given):
        return False
    if not isinstance(body, (bytes, bytearray, memoryview)):
        return False
    expected = sign(body, secret)[len(PREFIX) :]
    # Meta sends lowercase hex; accept uppercase too, it is the same digest.
    return hmac.compare_digest(expected, given.lower())


def verify_token_matches(given, expected):
    """Compare the ``hub.verify_token`` of the subscription GET with ours, in constant time.

    :rtype: bool
    """
    if not expected or not given:
        return False
    return hmac.compare_digest(_key(given), _key(expected))
