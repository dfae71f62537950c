"""X-Hub-Signature-256 over the raw body, failing closed (reference §1.1)."""

import hashlib
import hmac
import json

import pytest

import payloads
from wa_cloud.signature import sign, verify, verify_token_matches

SECRET = "a3f5c1e2d4b6a8f0c2e4d6b8a0f2c4e6"


def test_sign_matches_hmac_sha256_lowercase_hex():
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(body, SECRET) == "sha256=" + expected
    assert sign(body, SECRET.encode()) == sign(body, SECRET)
    assert sign(body, SECRET) == sign(body, SECRET).lower()


def test_verify_good_signature():
    body = payloads.dumps(payloads.inbound_text())
    assert verify(body, sign(body, SECRET), SECRET) is True
    assert verify(bytearray(body), sign(body, SECRET), SECRET) is True
    # Same digest in upper case is accepted.
    assert verify(body, "sha256=" + sign(body, SECRET)[7:].upper(), SECRET) is True


def test_unicode_escaped_body_and_reserialisation():
    # Meta signs the escaped form: "äöå" travels as \u00e4\u00f6\u00e5 in the raw bytes.
    raw = payloads.dumps(payloads.inbound_text(body="Olá, äöå!"))
    assert b"\\u00e4\\u00f6\\u00e5" in raw
    header = sign(raw, SECRET)
    assert verify(raw, header, SECRET) is True

    parsed = json.loads(raw)
    assert parsed["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] == "Olá, äöå!"
    # Re-serialising the parsed JSON gives other bytes, which do not verify.
    for reserialised in (
        json.dumps(parsed, ensure_ascii=False).encode("utf-8"),
        json.dumps(parsed).encode(),
        json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
    ):
        assert reserialised != raw
        assert verify(reserialised, header, SECRET) is False


def test_tampered_body_fails():
    body = payloads.dumps(payloads.inbound_text())
    header = sign(body, SECRET)
    assert verify(body.replace(b"color", b"colour"), header, SECRET) is False
    assert verify(body + b" ", header, SECRET) is False


@pytest.mark.parametrize("secret", [None, "", b""])
def test_fails_closed_without_secret(secret):
    body = b"{}"
    assert verify(body, sign(body, "anything"), secret) is False


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=" + "0" * 40,
        "SHA256=" + "0" * 64,
        "sha256=" + "0" * 63,
        "sha256=" + "0" * 65,
        "sha256=" + "g" * 64,
        "sha256= " + "0" * 63,
        "0" * 64,
    ],
)
def test_malformed_headers(header):
    assert verify(b"{}", header, SECRET) is False


def test_wrong_secret_and_non_bytes_body():
    body = b"{}"
    assert verify(body, sign(body, SECRET), "other-secret") is False
    assert verify("{}", sign(body, SECRET), SECRET) is False
    with pytest.raises(ValueError):
        sign(body, "")


def test_verify_token_matches():
    assert verify_token_matches("my-verify-token", "my-verify-token") is True
    assert verify_token_matches("my-verify-token", "other") is False
    assert verify_token_matches("", "") is False
    assert verify_token_matches(None, "expected") is False
    assert verify_token_matches("given", None) is False
    assert verify_token_matches("given", "") is False
    assert verify_token_matches("tökén", "tökén") is True
