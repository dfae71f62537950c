"""GraphClient against a fake session and a patched ``_send`` seam: no network."""

import json
import logging

import pytest
import requests

from wa_cloud.client import GraphClient, SendResult
from wa_cloud.errors import (
    AuthError,
    PermanentError,
    RecipientError,
    TemplateError,
    ThrottlingError,
    TransportError,
)

TOKEN = "EAAGm0PX4ZCpsBAKZCqLZAbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
APP_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
CODE = "AQD-embedded-signup-code_value"
BASE = "https://graph.facebook.com/v25.0"


class FakeResponse:
    def __init__(self, status_code, body, headers=None):
        self.status_code = status_code
        self.headers = headers or {"Content-Type": "application/json"}
        if isinstance(body, bytes):
            self.content = body
        else:
            self.content = json.dumps(body).encode()


class FakeSession:
    """``requests.Session`` stand-in: replays queued responses and records requests."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.calls = []

    def request(self, method, url, *, params=None, json=None, headers=None, timeout=None,
                data=None, files=None):
        self.calls.append(
            {
                "method": method,
                "url": url,
                "params": params,
                "json": json,
                "headers": headers,
                "timeout": timeout,
                "data": data,
                "files": files,
            }
        )
        response = self.responses.pop(0)
        if isinstance(response, Exception):
            raise response
        return response


def client_with(*responses, **kwargs):
    session = FakeSession(*responses)
    kwargs.setdefault("access_token", TOKEN)
    return GraphClient(session=session, **kwargs), session


class RecordingClient(GraphClient):
    """The seam Odoo patches: override ``_send`` only."""

    def __init__(self, replies, **kwargs):
        super().__init__(TOKEN, **kwargs)
        self.replies = list(replies)
        self.sent = []

    def _send(self, method, url, *, params, json, headers, timeout, data=None, files=None):
        self.sent.append((method, url, params, json))
        status, body = self.replies.pop(0)
        return status, {}, body if isinstance(body, bytes) else jsonlib_dumps(body)


def jsonlib_dumps(body):
    return json.dumps(body).encode()


# --------------------------------------------------------------------------- requests


def test_repr_hides_token_and_secret():
    client = GraphClient(TOKEN, app_id="123", app_secret=APP_SECRET)
    text = repr(client)
    assert TOKEN not in text and APP_SECRET not in text
    assert "token=set" in text
    assert "token=unset" in repr(GraphClient())


def test_get_phone_number_builds_fields_and_auth_header():
    client, session = client_with(
        FakeResponse(200, {"is_on_biz_app": True, "platform_type": "CLOUD_API", "id": "1065"})
    )
    result = client.get_phone_number("106540352242922")
    assert result["is_on_biz_app"] is True
    call = session.calls[0]
    assert call["method"] == "GET"
    assert call["url"] == f"{BASE}/106540352242922"
    assert call["params"]["fields"].split(",")[:2] == ["verified_name", "display_phone_number"]
    assert "is_on_biz_app" in call["params"]["fields"]
    assert call["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert call["headers"]["User-Agent"] == "whatsapp_coexistence"
    assert call["timeout"] == (5, 20)


def test_version_and_base_url_are_configurable():
    client, session = client_with(
        FakeResponse(200, {"id": "1"}), version="v24.0", base_url="http://127.0.0.1:8069/"
    )
    client.get_phone_number("1", fields=("id",))
    assert session.calls[0]["url"] == "http://127.0.0.1:8069/v24.0/1"
    assert session.calls[0]["params"] == {"fields": "id"}


def test_invalid_ids_are_refused():
    client, session = client_with()
    for bad in ("", None, "1/../oauth", "12?x=1"):
        with pytest.raises(ValueError):
            client.get_phone_number(bad)
    assert session.calls == []


def test_list_phone_numbers():
    client, session = client_with(
        FakeResponse(200, {"data": [{"id": "1065", "display_phone_number": "+1 555-078-3881"}]})
    )
    assert client.list_phone_numbers("102290129340398") == [
        {"id": "1065", "display_phone_number": "+1 555-078-3881"}
    ]
    assert session.calls[0]["url"] == f"{BASE}/102290129340398/phone_numbers"


def test_send_message_returns_send_result():
    payload = GraphClient.build_template_payload(
        "5511987654321",
        "appointment_reminder",
        "pt_BR",
        components=[{"type": "body", "parameters": [{"type": "text", "text": "Maria"}]}],
        biz_opaque_callback_data="appointment:42:reminder",
    )
    assert payload == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "5511987654321",
        "type": "template",
        "template": {
            "name": "appointment_reminder",
            "language": {"policy": "deterministic", "code": "pt_BR"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Maria"}]}],
        },
        "biz_opaque_callback_data": "appointment:42:reminder",
    }
    response = {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "5511987654321", "wa_id": "551187654321"}],
        "messages": [
            {"id": "wamid.HBgLNTUxMTg3NjU0MzIxFQIAERgSQUJD", "message_status": "accepted"}
        ],
    }
    client, session = client_with(FakeResponse(200, response))
    result = client.send_message("106540352242922", payload)
    assert isinstance(result, SendResult)
    assert result.wamid == "wamid.HBgLNTUxMTg3NjU0MzIxFQIAERgSQUJD"
    assert result.message_status == "accepted"
    assert result.input == "5511987654321"
    assert result.wa_id == "551187654321"
    assert result.raw == response
    call = session.calls[0]
    assert (call["method"], call["url"]) == ("POST", f"{BASE}/106540352242922/messages")
    assert call["json"] == payload


def test_template_payload_without_components():
    payload = GraphClient.build_template_payload("16505551234", "hello_world", "en_US")
    assert "components" not in payload["template"]
    assert "biz_opaque_callback_data" not in payload


def test_send_message_without_id_is_permanent():
    client, _session = client_with(FakeResponse(200, {"messaging_product": "whatsapp"}))
    with pytest.raises(PermanentError):
        client.send_message("1065", {})


def test_iter_templates_follows_cursors():
    page1 = {
        "data": [{"name": "a"}, {"name": "b"}],
        "paging": {"cursors": {"before": "B1", "after": "A1"}, "next": "https://graph/next1"},
    }
    page2 = {
        "data": [{"name": "c"}],
        "paging": {"cursors": {"before": "B2", "after": "A2"}},
    }
    client, session = client_with(FakeResponse(200, page1), FakeResponse(200, page2))
    names = [t["name"] for t in client.iter_templates("1022", limit=2, fields=("name", "status"))]
    assert names == ["a", "b", "c"]
    assert session.calls[0]["url"] == f"{BASE}/1022/message_templates"
    assert session.calls[0]["params"] == {"limit": 2, "fields": "name,status"}
    assert session.calls[1]["params"] == {"limit": 2, "fields": "name,status", "after": "A1"}


def test_iter_templates_stops_on_repeated_cursor():
    page = {"data": [{"name": "a"}], "paging": {"cursors": {"after": "A1"}, "next": "n"}}
    client, session = client_with(FakeResponse(200, page), FakeResponse(200, page))
    assert len(list(client.iter_templates("1022"))) == 2
    assert len(session.calls) == 2


def test_create_template():
    client, session = client_with(
        FakeResponse(200, {"id": "594425479261596", "status": "PENDING", "category": "UTILITY"})
    )
    result = client.create_template("1022", {"name": "x", "category": "UTILITY"})
    assert result["status"] == "PENDING"
    assert session.calls[0]["method"] == "POST"
    assert session.calls[0]["json"] == {"name": "x", "category": "UTILITY"}


def test_subscribe_unsubscribe_list():
    client, session = client_with(
        FakeResponse(200, {"success": True}),
        FakeResponse(200, {"success": True}),
        FakeResponse(200, {"success": True}),
        FakeResponse(200, {"data": [{"whatsapp_business_api_data": {"id": "67084"}}]}),
    )
    assert client.subscribe_app("1022") is True
    assert session.calls[0]["json"] is None
    assert client.subscribe_app("1022", "https://odoo.example/cb", "verify-me") is True
    assert session.calls[1]["json"] == {
        "override_callback_uri": "https://odoo.example/cb",
        "verify_token": "verify-me",
    }
    assert client.unsubscribe_app("1022") is True
    assert session.calls[2]["method"] == "DELETE"
    assert session.calls[2]["url"] == f"{BASE}/1022/subscribed_apps"
    assert client.list_subscribed_apps("1022") == [{"whatsapp_business_api_data": {"id": "67084"}}]
    with pytest.raises(ValueError):
        client.subscribe_app("1022", "https://odoo.example/cb")


def test_exchange_code_without_auth_header():
    client, session = client_with(
        FakeResponse(
            200, {"access_token": "EAAnewbusinesstoken0123456789", "token_type": "bearer"}
        ),
        access_token=None,
        app_id="123456",
        app_secret=APP_SECRET,
    )
    assert client.exchange_code(CODE) == "EAAnewbusinesstoken0123456789"
    call = session.calls[0]
    assert call["method"] == "GET"
    assert call["url"] == f"{BASE}/oauth/access_token"
    assert call["params"] == {"client_id": "123456", "client_secret": APP_SECRET, "code": CODE}
    assert "Authorization" not in call["headers"]


def test_exchange_code_requires_app_credentials():
    with pytest.raises(ValueError):
        GraphClient().exchange_code(CODE)


def test_exchange_code_error_does_not_leak_code_or_secret():
    body = {
        "error": {
            "message": f"Error validating verification code {CODE} for client_secret={APP_SECRET}",
            "type": "OAuthException",
            "code": 100,
            "error_subcode": 36008,
        }
    }
    client, _session = client_with(
        FakeResponse(400, body), access_token=None, app_id="123", app_secret=APP_SECRET
    )
    with pytest.raises(PermanentError) as info:
        client.exchange_code(CODE)
    for text in (str(info.value), repr(info.value), json.dumps(info.value.to_dict())):
        assert CODE not in text and APP_SECRET not in text


def test_request_smb_app_data():
    client, session = client_with(
        FakeResponse(200, {"messaging_product": "whatsapp", "request_id": "REQ-1"}),
        FakeResponse(200, {"messaging_product": "whatsapp", "request_id": "REQ-2"}),
    )
    assert client.request_smb_app_data("1065", "smb_app_state_sync") == "REQ-1"
    assert client.request_smb_app_data("1065", "history") == "REQ-2"
    assert session.calls[0]["url"] == f"{BASE}/1065/smb_app_data"
    assert session.calls[0]["json"] == {
        "messaging_product": "whatsapp",
        "sync_type": "smb_app_state_sync",
    }
    with pytest.raises(ValueError):
        client.request_smb_app_data("1065", "contacts")


def test_register_phone_number():
    client, session = client_with(FakeResponse(200, {"success": True}))
    assert client.register_phone_number("1065", "123456") is True
    assert session.calls[0]["json"] == {"messaging_product": "whatsapp", "pin": "123456"}
    with pytest.raises(ValueError):
        client.register_phone_number("1065", "12")


# --------------------------------------------------------------------------- errors


def test_graph_error_is_mapped():
    body = {
        "error": {
            "message": "(#131026) Message Undeliverable.",
            "type": "OAuthException",
            "code": 131026,
            "error_data": {"messaging_product": "whatsapp", "details": "Message Undeliverable."},
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
        }
    }
    client, _session = client_with(FakeResponse(400, body))
    with pytest.raises(RecipientError) as info:
        client.send_message("1065", {})
    assert info.value.code == 131026
    assert info.value.http_status == 400
    assert info.value.fbtrace_id == "Az8or2yhqkZfEZ-_4Qn_Bam"


def test_throttling_and_template_errors():
    throttled = {"error": {"message": "(#130429) Rate limit hit", "code": 130429}}
    template = {"error": {"message": "(#132001) Template name does not exist", "code": 132001}}
    client, _session = client_with(FakeResponse(400, throttled), FakeResponse(404, template))
    with pytest.raises(ThrottlingError) as info:
        client.send_message("1065", {})
    assert info.value.retry_after == 1 and info.value.ignore_retry is True
    with pytest.raises(TemplateError):
        client.send_message("1065", {})


def test_error_key_in_2xx_body_raises():
    client, _session = client_with(FakeResponse(200, {"error": {"message": "x", "code": 100}}))
    with pytest.raises(PermanentError):
        client.get_phone_number("1065")


def test_auth_error_token_never_leaks():
    body = {
        "error": {
            "message": f"Malformed access token {TOKEN}",
            "type": "OAuthException",
            "code": 190,
            "fbtrace_id": "A1",
        }
    }
    client, _session = client_with(FakeResponse(401, body))
    with pytest.raises(AuthError) as info:
        client.get_phone_number("1065")
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)
    assert TOKEN not in json.dumps(info.value.to_dict())


def test_missing_token_is_auth_error():
    client, session = client_with(access_token=None)
    with pytest.raises(AuthError):
        client.get_phone_number("1065")
    assert session.calls == []


def test_non_json_responses():
    client, _session = client_with(
        FakeResponse(502, b"<html>Bad Gateway</html>"),
        FakeResponse(200, b"not json"),
        FakeResponse(400, b"not json"),
        FakeResponse(200, [1, 2]),
    )
    with pytest.raises(TransportError) as info:
        client.get_phone_number("1065")
    assert info.value.http_status == 502
    with pytest.raises(PermanentError, match="Unexpected response"):
        client.get_phone_number("1065")
    with pytest.raises(PermanentError):
        client.get_phone_number("1065")
    with pytest.raises(PermanentError):
        client.get_phone_number("1065")


@pytest.mark.parametrize(
    "exc",
    [
        requests.ConnectTimeout(
            f"HTTPSConnectionPool: Max retries exceeded with url: /v25.0/oauth/access_token"
            f"?client_id=1&client_secret={APP_SECRET}&code={CODE}"
        ),
        requests.ReadTimeout(f"read timeout url=...client_secret={APP_SECRET}"),
        requests.ConnectionError(f"Connection refused for ...code={CODE}"),
    ],
)
def test_transport_errors_hide_url_and_secrets(exc, caplog):
    caplog.set_level(logging.DEBUG)
    client, _session = client_with(exc, access_token=None, app_id="1", app_secret=APP_SECRET)
    with pytest.raises(TransportError) as info:
        client.exchange_code(CODE)
    err = info.value
    assert err.kind == "retryable"
    assert "oauth/access_token" in str(err)
    # No chained exception: its text (the full URL) would be printed with the traceback.
    assert err.__cause__ is None and err.__suppress_context__ is True
    texts = [str(err), repr(err), json.dumps(err.to_dict()), caplog.text]
    for text in texts:
        assert APP_SECRET not in text and CODE not in text
        assert "?client_id" not in text


def test_logs_never_contain_secrets(caplog):
    caplog.set_level(logging.DEBUG)
    client, _session = client_with(
        FakeResponse(200, {"access_token": "EAAnewbusinesstoken0123456789"}),
        FakeResponse(200, {"id": "1"}),
        app_id="1",
        app_secret=APP_SECRET,
    )
    client.exchange_code(CODE)
    client.get_phone_number("1")
    assert caplog.records, "the client should log its calls at debug level"
    for secret in (TOKEN, APP_SECRET, CODE, "EAAnewbusinesstoken0123456789"):
        assert secret not in caplog.text


def test_patching_only_the_send_seam():
    client = RecordingClient(
        [
            (200, {"contacts": [{"input": "1", "wa_id": "1"}], "messages": [{"id": "wamid.X"}]}),
            (429, {"error": {"message": "(#131056) Pair rate limit", "code": 131056}}),
        ]
    )
    assert client.send_message("1065", {"to": "1"}).wamid == "wamid.X"
    with pytest.raises(ThrottlingError) as info:
        client.send_message("1065", {"to": "1"})
    assert info.value.retry_after == 6
    assert [s[1] for s in client.sent] == [f"{BASE}/1065/messages"] * 2


def test_default_send_uses_a_requests_session(monkeypatch):
    captured = {}

    class Session(FakeSession):
        def request(self, method, url, **kwargs):
            captured.update(kwargs, method=method, url=url)
            return FakeResponse(200, {"id": "1"})

    monkeypatch.setattr(requests, "Session", Session)
    client = GraphClient(TOKEN)
    assert client.get_phone_number("1", fields=("id",)) == {"id": "1"}
    assert captured["url"] == f"{BASE}/1"
    assert isinstance(client.session, Session)


# --------------------------------------------------------------------------- health check


def test_get_phone_health_asks_one_get_with_fields():
    client, session = client_with(FakeResponse(200, {
        "status": "CONNECTED", "quality_rating": "RED", "name_status": "APPROVED",
        "messaging_limit_tier": "TIER_1K", "id": "1065"}))
    assert client.get_phone_health("1065")["quality_rating"] == "RED"
    call = session.calls[0]
    assert call["method"] == "GET" and call["url"] == f"{BASE}/1065"
    assert set(call["params"]["fields"].split(",")) == {
        "status", "quality_rating", "name_status", "messaging_limit_tier",
        "display_phone_number"}


def test_is_app_subscribed_looks_for_our_app_id():
    client, _session = client_with(
        FakeResponse(200, {"data": [{"whatsapp_business_api_data": {"id": "67084"}}]}),
        FakeResponse(200, {"data": [{"whatsapp_business_api_data": {"id": "99999"}}]}),
        FakeResponse(200, {"data": []}),
    )
    assert client.is_app_subscribed("1022", "67084") is True
    assert client.is_app_subscribed("1022", "67084") is False
    assert client.is_app_subscribed("1022", "67084") is False


def test_debug_token_uses_the_app_token_and_parses_expiry():
    client, session = client_with(
        FakeResponse(200, {"data": {"app_id": "123", "type": "USER", "is_valid": True,
                                    "expires_at": 1893456000}}),
        FakeResponse(200, {"data": {"app_id": "123", "type": "SYSTEM_USER", "is_valid": True,
                                    "expires_at": 0}}),
        FakeResponse(200, {"data": {"is_valid": False, "error": {
            "code": 190, "message": "Session has expired."}}}),
        app_id="123", app_secret=APP_SECRET,
    )
    user = client.debug_token(TOKEN)
    assert (user.is_valid, user.expires_at, user.token_type) == (True, 1893456000, "USER")
    call = session.calls[0]
    assert call["url"] == f"{BASE}/debug_token"
    assert call["params"] == {"input_token": TOKEN, "access_token": f"123|{APP_SECRET}"}
    assert "Authorization" not in call["headers"]
    system = client.debug_token(TOKEN)
    assert system.is_valid and system.expires_at is None
    invalid = client.debug_token(TOKEN)
    assert not invalid.is_valid and invalid.error == "Session has expired."


def test_debug_token_error_masks_both_tokens():
    client, _session = client_with(
        FakeResponse(400, {"error": {"code": 100, "type": "OAuthException",
                                     "message": f"bad token {TOKEN} for 123|{APP_SECRET}"}}),
        app_id="123", app_secret=APP_SECRET,
    )
    with pytest.raises(PermanentError) as info:
        client.debug_token(TOKEN)
    assert TOKEN not in str(info.value) and APP_SECRET not in str(info.value)


def test_debug_token_needs_app_credentials():
    with pytest.raises(ValueError):
        GraphClient(TOKEN).debug_token(TOKEN)
