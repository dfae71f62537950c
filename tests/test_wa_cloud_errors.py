"""Error classification and sanitizing (reference §4.2)."""

import json

import pytest

from wa_cloud import errors
from wa_cloud.errors import (
    DOC_URL,
    ERRORS,
    AuthError,
    PermanentError,
    RecipientError,
    RetryableError,
    TemplateError,
    TenantBlockingError,
    ThrottlingError,
    TransportError,
    WaCloudError,
    classify,
    error_from_response,
    sanitize,
)

TOKEN = "EAAGm0PX4ZCpsBAKZCqLZAbCdEfGhIjKlMnOpQrStUvWxYz0123456789"

RETRYABLE_CODES = [1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057, 133004, 132015]
TENANT_CODES = [0, 3, 10, 190, 200, 250, 299, 368, 131005, 131031, 131042, 131044, 131045]
TENANT_CODES += [131048, 133010]
PERMANENT_CODES = [
    100, 130497, 131008, 131009, 131021, 131026, 131030, 131047, 131049, 131050, 131051, 131052,
    131053, 131060, 131062, 131063, 132000, 132001, 132005, 132007, 132008, 132012, 132016,
    133005, 133006, 133008, 133009, 133016, 135000, 137000, 2593109,
]  # fmt: skip


def graph_error(code, message="(#131026) Message Undeliverable.", details=None, **extra):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Az8or2yhq"}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error.update(extra)
    return {"error": error}


@pytest.mark.parametrize("code", RETRYABLE_CODES)
def test_retryable_codes(code):
    assert classify(code) == "retryable"
    assert issubclass(ERRORS[code].cls, RetryableError)


@pytest.mark.parametrize("code", TENANT_CODES)
def test_tenant_blocking_codes(code):
    assert classify(code) == "tenant_blocking"
    assert issubclass(ERRORS[code].cls, TenantBlockingError)


@pytest.mark.parametrize("code", PERMANENT_CODES)
def test_permanent_codes(code):
    assert classify(code) == "permanent"
    assert issubclass(ERRORS[code].cls, PermanentError)


def test_table_is_consistent():
    for code, spec in ERRORS.items():
        assert spec.kind == spec.cls.kind, code
        assert spec.meaning, code
    assert set(range(200, 300)) <= set(ERRORS)


def test_throughput_codes_do_not_consume_retries():
    for code in (4, 80007, 130429, 131056):
        assert ERRORS[code].cls is ThrottlingError
        assert error_from_response(429, graph_error(code)).ignore_retry is True
    assert ERRORS[130429].retry_after == 1
    assert ERRORS[131056].retry_after == 6
    assert ERRORS[80007].retry_after == ERRORS[4].retry_after == 60
    assert error_from_response(500, graph_error(131000)).ignore_retry is False


def test_subclasses():
    assert ERRORS[0].cls is AuthError and ERRORS[190].cls is AuthError
    for code in (131026, 131050, 130497, 131062, 137000):
        assert ERRORS[code].cls is RecipientError
    for code in (132000, 132001, 132016):
        assert ERRORS[code].cls is TemplateError
    assert issubclass(TransportError, RetryableError)


def test_known_code_wins_over_http_status():
    # 131048 (spam rate limit) comes with HTTP 429 but must stop the tenant.
    err = error_from_response(429, graph_error(131048, "(#131048) Spam rate limit hit"))
    assert isinstance(err, TenantBlockingError)
    assert classify(131048, 429) == "tenant_blocking"


@pytest.mark.parametrize(
    "status, cls",
    [
        (429, ThrottlingError),
        (500, RetryableError),
        (503, RetryableError),
        (401, AuthError),
        (403, TenantBlockingError),
        (400, PermanentError),
        (404, PermanentError),
    ],
)
def test_unknown_code_by_http_status(status, cls):
    err = error_from_response(status, graph_error(999999, "Something new"))
    assert type(err) is cls
    assert err.code == 999999
    assert classify(999999, status) == cls.kind


def test_non_dict_bodies():
    for body in (None, "oops", [], {"error": None}, {"foo": 1}):
        err = error_from_response(502, body)
        assert type(err) is RetryableError
        assert err.code is None
        assert "502" in str(err)
    err = error_from_response(400, {"error": "invalid_request"})
    assert type(err) is PermanentError
    assert "invalid_request" in str(err)


def test_is_transient_unknown_code_is_retryable():
    err = error_from_response(400, graph_error(987654, "Temporary glitch", is_transient=True))
    assert isinstance(err, RetryableError)


def test_error_fields_and_message():
    body = graph_error(
        131026,
        details="Message Undeliverable: recipient is not on WhatsApp",
        error_subcode=2494010,
    )
    err = error_from_response(400, body)
    assert isinstance(err, RecipientError)
    assert err.kind == "permanent"
    assert err.code == 131026
    assert err.subcode == 2494010
    assert err.http_status == 400
    assert err.fbtrace_id == "Az8or2yhq"
    assert err.title == "Message Undeliverable."
    assert err.doc_url == DOC_URL
    assert str(err) == (
        "[131026] Message Undeliverable: Message Undeliverable: recipient is not on WhatsApp"
    )
    data = err.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["kind"] == "permanent"
    assert data["error_class"] == "RecipientError"
    assert data["code"] == 131026
    assert "RecipientError(code=131026" in repr(err)


def test_auth_error_190():
    body = graph_error(
        190,
        "Error validating access token: Session has expired on Thursday.",
        error_subcode=463,
    )
    err = error_from_response(401, body)
    assert isinstance(err, AuthError)
    assert err.kind == "tenant_blocking"
    assert err.subcode == 463


def test_meaning_fills_missing_title():
    err = errors.make_error(131050)
    assert str(err) == "[131050] User stopped marketing messages"
    assert str(WaCloudError()) == "Graph API error"


# --------------------------------------------------------------------------- sanitizing


def test_sanitize_masks_graph_tokens_and_long_runs():
    text = (
        f"Invalid OAuth access token {TOKEN} for "
        "secret 0123456789abcdef0123456789abcdef01 and blob "
        "dGhpcyBpcyBhIHNlY3JldCBibG9iIHdpdGggZGlnaXRzIDEyMzQ1Ng=="
    )
    clean = sanitize(text)
    assert TOKEN not in clean
    assert "0123456789abcdef0123456789abcdef01" not in clean
    assert "dGhpcyBpcyBhIHNlY3JldCBibG9i" not in clean
    assert clean.startswith("Invalid OAuth access token [redacted]")


def test_sanitize_keeps_readable_text_and_urls():
    text = "See /documentation/business-messaging/whatsapp/support/error-codes for 131026"
    assert sanitize(text) == text


def test_sanitize_masks_given_secrets_and_query_params():
    secret = "s3cr3t-app-secret"
    text = (
        f"bad secret {secret} in https://graph.facebook.com/v25.0/oauth/access_token?"
        "client_id=123&client_secret=abc%2Fdef&code=AQBx_zz"
    )
    clean = sanitize(text, secrets=[secret, None, ""])
    assert secret not in clean
    assert "abc%2Fdef" not in clean
    assert "AQBx_zz" not in clean
    assert "client_id=123" in clean
    # URL-encoded form of a secret is masked too.
    assert "a%2Fb%2Bc" not in sanitize("x=a%2Fb%2Bc", secrets=["a/b+c"])


def test_sanitize_truncates_and_strips_control_chars():
    clean = sanitize("line1\nline2\r\x00" + "word " * 300)
    assert "\n" not in clean and "\x00" not in clean
    assert len(clean) == errors.MAX_MESSAGE_LENGTH
    assert clean.endswith("…")
    assert sanitize(None) == ""


def test_error_never_contains_secrets():
    secret = "my-app-secret-value"
    body = graph_error(
        100,
        f"Invalid parameter access_token={TOKEN} client_secret={secret}",
        details=f"token {TOKEN} and {secret}",
    )
    err = error_from_response(400, body, secrets=[secret])
    for text in (str(err), repr(err), json.dumps(err.to_dict()), str(err.args)):
        assert TOKEN not in text
        assert secret not in text
