"""Tests of the fake Meta Graph API server (``whatsapp_coexistence/tools/fake_graph``).

Real HTTP against a server on port 0; webhooks go to a tiny local receiver that keeps the raw
bytes, so signatures are recomputed exactly as the addon's controller must do it (§1.1).
"""

import hashlib
import hmac
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

TOOLS_DIR = Path(__file__).resolve().parent.parent / "whatsapp_coexistence" / "tools"
try:
    import fake_graph
except ImportError:  # until tests/conftest.py puts tools/ on sys.path
    sys.path.insert(0, str(TOOLS_DIR))
    import fake_graph

from fake_graph import FakeGraphServer, GraphError  # noqa: E402
from fake_graph.wire import http_status_for_code  # noqa: E402

SECRET = "test-app-secret"
APP_ID = "1234567890"
CLINIC_WABA = "102290129340398"
CLINIC_PHONE = "106540352242922"
CLINIC_TOKEN = "EAAGfakeclinic0000000000000000000001"
SALON_WABA = "202290129340398"
SALON_PHONE = "206540352242922"
SALON_TOKEN = "EAAGfakesalon000000000000000000000002"
V = "/v25.0"


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------

class Receiver:
    """A webhook endpoint on 127.0.0.1 that records raw POST bodies and answers GET challenges."""

    def __init__(self, status=200, verify_token="vt"):
        self.status = status
        self.verify_token = verify_token
        self.events = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.cond:
                    receiver.events.append({"path": self.path, "headers": dict(self.headers),
                                            "raw": raw})
                    receiver.cond.notify_all()
                body = b"ok"
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                query = parse_qs(urlsplit(self.path).query)
                ok = (query.get("hub.mode") == ["subscribe"]
                      and query.get("hub.verify_token") == [receiver.verify_token])
                body = query["hub.challenge"][0].encode() if ok else b"forbidden"
                self.send_response(200 if ok else 403)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/whatsapp_coexistence/webhook" % self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def payloads(self, field=None):
        """Parsed bodies received so far, optionally only one webhook ``field``."""
        with self.cond:
            out = [json.loads(e["raw"]) for e in self.events]
        if field:
            out = [p for p in out if p["entry"][0]["changes"][0]["field"] == field]
        return out

    def wait_for(self, count, field=None, timeout=5.0):
        """Wait until ``count`` webhooks (of ``field``) arrived; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.payloads(field)
            if len(got) >= count:
                return got
            with self.cond:
                self.cond.wait(0.05)
        raise AssertionError("expected %d %s webhooks, got %d" % (
            count, field or "", len(self.payloads(field))))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    rcv = Receiver()
    yield rcv
    rcv.close()


@pytest.fixture
def srv():
    server = FakeGraphServer(port=0, app_secret=SECRET, status_delay=0.02,
                             template_approve_delay=0.05, history_delay=0.01)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def http():
    session = requests.Session()
    session.trust_env = False  # never route 127.0.0.1 through an environment proxy
    yield session
    session.close()


def call(http, srv, method, path, token=CLINIC_TOKEN, **kwargs):
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = "Bearer " + token
    kwargs.setdefault("timeout", 10)
    return http.request(method, srv.url + V + path, headers=headers, **kwargs)


def error_of(resp):
    return resp.json()["error"]


def text_message(to="5511987651234", body="Olá!", **extra):
    return dict({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                 "type": "text", "text": {"body": body}}, **extra)


def confirmation(params=3, name="appointment_confirmation", lang="pt_BR", **extra):
    values = ["Maria", "12/05/2026", "14:00", "extra"][:params]
    return dict({"messaging_product": "whatsapp", "to": "5511987651234", "type": "template",
                 "template": {"name": name, "language": {"code": lang, "policy": "deterministic"},
                              "components": [{"type": "body", "parameters": [
                                  {"type": "text", "text": v} for v in values]}]}}, **extra)


def signature(raw, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------
# Auth and nodes
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("token", [None, "EAAGnotatoken"])
def test_missing_or_unknown_token_is_401_code_190(srv, http, token):
    resp = call(http, srv, "GET", "/" + CLINIC_PHONE, token=token)
    assert resp.status_code == 401
    err = error_of(resp)
    assert err["code"] == 190
    assert err["type"] == "OAuthException"
    assert err["message"] == "Invalid OAuth access token - Cannot parse access token"
    assert err["fbtrace_id"]
    assert "invalid_token" in resp.headers["WWW-Authenticate"]


def test_token_of_another_waba_is_403_code_200(srv, http):
    resp = call(http, srv, "GET", "/" + CLINIC_PHONE, token=SALON_TOKEN)
    assert resp.status_code == 403
    assert error_of(resp)["code"] == 200
    assert error_of(resp)["message"] == "(#200) Permissions error"
    resp = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, token=SALON_TOKEN,
                json=text_message())
    assert resp.status_code == 403


def test_unknown_object_and_unsupported_edge_are_100_33(srv, http):
    resp = call(http, srv, "GET", "/999999999")
    assert resp.status_code == 400
    err = error_of(resp)
    assert (err["code"], err["error_subcode"]) == (100, 33)
    assert err["type"] == "GraphMethodException"
    assert err["message"].startswith("Unsupported get request. Object with ID '999999999'")
    resp = call(http, srv, "POST", "/%s/nonsense" % CLINIC_PHONE, json={})
    assert resp.status_code == 400
    assert error_of(resp)["message"].startswith("Unsupported post request.")


def test_phone_answers_only_the_requested_fields(srv, http):
    resp = call(http, srv, "GET", "/" + CLINIC_PHONE,
                params={"fields": "is_on_biz_app,platform_type"})
    assert resp.status_code == 200
    assert resp.json() == {"is_on_biz_app": True, "platform_type": "CLOUD_API",
                           "id": CLINIC_PHONE}
    fields = ("id,verified_name,display_phone_number,quality_rating,code_verification_status,"
              "platform_type,is_on_biz_app,throughput,name_status,messaging_limit_tier")
    data = call(http, srv, "GET", "/" + CLINIC_PHONE, params={"fields": fields}).json()
    assert data["verified_name"] == "Clínica Sorriso"
    assert data["display_phone_number"] == "+55 11 98765-4321"
    assert data["quality_rating"] == "GREEN"
    assert data["code_verification_status"] == "VERIFIED"
    assert data["throughput"] == {"level": "STANDARD"}
    assert data["name_status"] == "APPROVED"
    assert set(data) == set(fields.split(","))
    salon = call(http, srv, "GET", "/" + SALON_PHONE, token=SALON_TOKEN,
                 params={"fields": "is_on_biz_app"}).json()
    assert salon["is_on_biz_app"] is False
    resp = call(http, srv, "GET", "/" + CLINIC_PHONE, params={"fields": "id,bogus"})
    assert resp.status_code == 400
    assert "nonexisting field (bogus)" in error_of(resp)["message"]


def test_waba_phone_numbers(srv, http):
    resp = call(http, srv, "GET", "/%s/phone_numbers" % CLINIC_WABA)
    assert resp.status_code == 200
    body = resp.json()
    assert [p["id"] for p in body["data"]] == [CLINIC_PHONE]
    assert body["data"][0]["display_phone_number"] == "+55 11 98765-4321"
    assert set(body["paging"]["cursors"]) == {"before", "after"}


def test_any_graph_version_is_accepted_and_recorded(srv, http):
    for version in ("v21.0", "v25.0", "v26.0"):
        resp = http.get("%s/%s/%s" % (srv.url, version, CLINIC_PHONE),
                        headers={"Authorization": "Bearer " + CLINIC_TOKEN})
        assert resp.status_code == 200
        assert resp.headers["facebook-api-version"] == version
    assert [r["version"] for r in srv.requests()] == ["v21.0", "v25.0", "v26.0"]


def test_debug_token_lists_the_bound_wabas(srv, http):
    resp = http.get(srv.url + V + "/debug_token", params={"input_token": CLINIC_TOKEN},
                    headers={"Authorization": "Bearer %s|%s" % (APP_ID, SECRET)})
    data = resp.json()["data"]
    assert data["is_valid"] is True
    assert data["granular_scopes"][0]["target_ids"] == [CLINIC_WABA]


def app_token_get(http, srv, input_token):
    return http.get(srv.url + V + "/debug_token", params={"input_token": input_token},
                    headers={"Authorization": "Bearer %s|%s" % (APP_ID, SECRET)}).json()["data"]


def test_debug_token_of_a_user_token_expiring_then_expired(srv, http):
    soon = int(time.time()) + 3 * 86400
    srv.set_token(CLINIC_TOKEN, expires_at=soon)
    data = app_token_get(http, srv, CLINIC_TOKEN)
    assert (data["is_valid"], data["type"], data["expires_at"]) == (True, "USER", soon)
    srv.set_token(CLINIC_TOKEN, expires_at=time.time() - 1)
    data = app_token_get(http, srv, CLINIC_TOKEN)
    assert data["is_valid"] is False and data["error"]["code"] == 190
    resp = call(http, srv, "GET", "/%s" % CLINIC_PHONE)
    assert resp.status_code == 401 and error_of(resp)["error_subcode"] == 463


def test_revoked_token_is_invalid_and_refused(srv, http):
    srv.set_token(CLINIC_TOKEN, revoked=True)
    assert app_token_get(http, srv, CLINIC_TOKEN)["is_valid"] is False
    assert error_of(call(http, srv, "GET", "/%s" % CLINIC_PHONE))["code"] == 190
    srv.reset()
    assert app_token_get(http, srv, CLINIC_TOKEN)["expires_at"] == 0


def test_set_phone_changes_the_health_fields(srv, http):
    srv.set_phone(CLINIC_PHONE, status="DISCONNECTED", quality_rating="RED",
                  messaging_limit_tier="TIER_1K")
    resp = call(http, srv, "GET", "/%s" % CLINIC_PHONE,
                params={"fields": "status,quality_rating,messaging_limit_tier,name_status"})
    assert resp.json() == {"id": CLINIC_PHONE, "status": "DISCONNECTED", "quality_rating": "RED",
                           "messaging_limit_tier": "TIER_1K", "name_status": "APPROVED"}
    with pytest.raises(KeyError):
        srv.set_phone(CLINIC_PHONE, bogus=1)


def test_phone_quality_webhook_is_waba_level(srv, receiver):
    srv.configure(webhook_url=receiver.url)
    srv.send_phone_event(CLINIC_PHONE, "phone_number_quality_update", event="FLAGGED",
                         current_limit="TIER_1K")
    body = receiver.wait_for(1)[0]
    entry = body["entry"][0]
    assert entry["id"] == CLINIC_WABA and "time" in entry
    change = entry["changes"][0]
    assert change["field"] == "phone_number_quality_update"
    assert change["value"] == {"display_phone_number": "5511987654321", "event": "FLAGGED",
                               "current_limit": "TIER_1K"}


def test_second_number_on_a_waba(srv, http):
    srv.add_phone(CLINIC_WABA, "106540352249999", "+55 11 91111-2222", is_on_biz_app=True,
                  verified_name="Clínica Sorriso")
    body = call(http, srv, "GET", "/%s/phone_numbers" % CLINIC_WABA).json()
    assert [p["id"] for p in body["data"]] == [CLINIC_PHONE, "106540352249999"]
    new = call(http, srv, "GET", "/106540352249999",
               params={"fields": "display_phone_number,is_on_biz_app"}).json()
    assert (new["display_phone_number"], new["is_on_biz_app"]) == ("+55 11 91111-2222", True)
    # The new number's syncs are its own: requested once each, like any number.
    resp = call(http, srv, "POST", "/106540352249999/smb_app_data",
                json={"messaging_product": "whatsapp", "sync_type": "history"})
    assert resp.status_code == 200 and resp.json()["request_id"]
    with pytest.raises(ValueError):
        srv.add_phone(CLINIC_WABA, CLINIC_PHONE, "+55 11 98765-4321")
    with pytest.raises(KeyError):
        srv.add_phone(CLINIC_WABA, "106540352248888", "+55 11 93333-4444", bogus=1)
    srv.reset()
    body = call(http, srv, "GET", "/%s/phone_numbers" % CLINIC_WABA).json()
    assert [p["id"] for p in body["data"]] == [CLINIC_PHONE]


def test_number_change_webhook_is_a_system_message(srv, receiver):
    srv.configure(webhook_url=receiver.url)
    sent = srv.send_number_change(CLINIC_PHONE, "+55 11 99123-4567", "5511955554444",
                                  name="Maria")
    change = receiver.wait_for(1)[0]["entry"][0]["changes"][0]
    assert change["field"] == "messages"
    value = change["value"]
    assert "contacts" not in value
    assert value["metadata"]["phone_number_id"] == CLINIC_PHONE
    (msg,) = value["messages"]
    assert (msg["id"], msg["from"], msg["type"]) == (sent["wamid"], "5511991234567", "system")
    assert msg["system"] == {"body": "User Maria changed from 5511991234567 to 5511955554444",
                             "wa_id": "5511955554444", "type": "user_changed_number"}


# ---------------------------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------------------------

def test_send_text_answers_wamid_and_contacts(srv, http):
    resp = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE,
                json=text_message(to="+55 11 98765-1234"))
    assert resp.status_code == 200
    body = resp.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+55 11 98765-1234", "wa_id": "5511987651234"}]
    wamid = body["messages"][0]["id"]
    assert wamid.startswith("wamid.HBg")
    assert body["messages"][0]["message_status"] == "accepted"
    other = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=text_message())
    assert other.json()["messages"][0]["id"] != wamid
    sent = srv.messages(CLINIC_PHONE)
    assert sent[0]["wamid"] == wamid
    assert sent[0]["payload"]["text"]["body"] == "Olá!"


def test_send_to_brazilian_number_with_seeded_legacy_wa_id(srv, http):
    resp = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE,
                json=text_message(to="5511991234567"))
    assert resp.json()["contacts"] == [{"input": "5511991234567", "wa_id": "551191234567"}]
    srv.configure(br_legacy_wa_ids=True)
    resp = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE,
                json=text_message(to="5521998765432"))
    assert resp.json()["contacts"][0]["wa_id"] == "552198765432"


@pytest.mark.parametrize("payload, fragment", [
    ({"to": "5511987651234", "type": "text", "text": {"body": "x"}}, "messaging_product"),
    ({"messaging_product": "sms", "to": "5511987651234", "text": {"body": "x"}},
     "messaging_product"),
    ({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}, "to"),
    ({"messaging_product": "whatsapp", "to": "5511987651234", "type": "fax"}, "type"),
    ({"messaging_product": "whatsapp", "to": "5511987651234", "type": "text"}, "text['body']"),
])
def test_send_validation_errors_are_code_100(srv, http, payload, fragment):
    resp = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=payload)
    assert resp.status_code == 400
    err = error_of(resp)
    assert err["code"] == 100
    assert fragment in err["message"]
    assert srv.messages() == []


def test_send_template_ok(srv, http):
    resp = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=confirmation())
    assert resp.status_code == 200
    assert srv.messages()[0]["category"] == "utility"


@pytest.mark.parametrize("payload", [
    confirmation(name="no_such_template"),
    confirmation(lang="en_US"),
])
def test_send_unknown_template_is_132001(srv, http, payload):
    resp = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=payload)
    assert resp.status_code == 404
    err = error_of(resp)
    assert err["code"] == 132001
    assert "Template name does not exist in the translation" in err["message"]
    assert err["error_data"]["messaging_product"] == "whatsapp"
    assert "does not exist in" in err["error_data"]["details"]


@pytest.mark.parametrize("count", [0, 2, 4])
def test_send_template_with_wrong_parameter_count_is_132000(srv, http, count):
    resp = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE,
                json=confirmation(params=count))
    assert resp.status_code == 400
    err = error_of(resp)
    assert err["code"] == 132000
    assert "Number of parameters does not match the expected number of params" in err["message"]
    assert "(%d)" % count in err["error_data"]["details"]


def test_hello_world_takes_no_parameters(srv, http):
    payload = {"messaging_product": "whatsapp", "to": "5511987651234", "type": "template",
               "template": {"name": "hello_world", "language": {"code": "en_US"}}}
    assert call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=payload).ok


def test_named_template_parameters(srv, http):
    def reminder(params):
        return {"messaging_product": "whatsapp", "to": "5511987651234", "type": "template",
                "template": {"name": "appointment_reminder", "language": {"code": "pt_BR"},
                             "components": [{"type": "body", "parameters": params}]}}

    good = [{"type": "text", "parameter_name": "customer_name", "text": "Maria"},
            {"type": "text", "parameter_name": "appointment_time", "text": "14:00"}]
    assert call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=reminder(good)).ok
    unnamed = [{"type": "text", "text": "Maria"}, {"type": "text", "text": "14:00"}]
    resp = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=reminder(unnamed))
    assert error_of(resp)["code"] == 100
    assert error_of(resp)["error_data"]["details"] == "Parameter name is missing or empty"


def test_template_parameter_with_newline_is_rejected(srv, http):
    payload = confirmation()
    payload["template"]["components"][0]["parameters"][0]["text"] = "Maria\nSilva"
    resp = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=payload)
    assert error_of(resp)["code"] == 132018


def test_throughput_and_pair_rate_limits(srv, http):
    srv.configure(pair_limit_seconds=60)
    assert call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=text_message()).ok
    resp = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=text_message())
    assert (resp.status_code, error_of(resp)["code"]) == (429, 131056)
    srv.configure(pair_limit_seconds=0, throughput_limit=2)
    codes = [call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE,
                  json=text_message(to="55119876500%02d" % i)).status_code for i in range(3)]
    assert codes[-1] == 429
    assert error_of(call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE,
                         json=text_message(to="5511987650099")))["code"] == 130429


# ---------------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------------

def test_template_pagination_over_three_pages(srv, http):
    url = srv.url + V + "/%s/message_templates?limit=1&fields=name,language,status" % CLINIC_WABA
    names, pages = [], 0
    while url:
        resp = http.get(url, headers={"Authorization": "Bearer " + CLINIC_TOKEN})
        assert resp.status_code == 200
        body = resp.json()
        pages += 1
        assert len(body["data"]) == 1
        assert set(body["data"][0]) == {"name", "language", "status", "id"}
        assert set(body["paging"]["cursors"]) == {"before", "after"}
        names.append(body["data"][0]["name"])
        url = body["paging"].get("next")
        if url:
            assert "after=" in url and "limit=1" in url
    assert pages == 3
    assert names == ["hello_world", "appointment_confirmation", "appointment_reminder"]
    assert "previous" in body["paging"]


def test_template_listing_default_fields(srv, http):
    body = call(http, srv, "GET", "/%s/message_templates" % CLINIC_WABA).json()
    tpl = next(t for t in body["data"] if t["name"] == "appointment_confirmation")
    assert set(tpl) == {"name", "language", "status", "category", "id", "parameter_format",
                        "components"}
    assert tpl["components"][0]["text"] == (
        "Olá {{1}}, sua consulta em {{2}} às {{3}} está confirmada.")
    assert [b["text"] for b in tpl["components"][1]["buttons"]] == ["Confirmar", "Cancelar"]
    assert "next" not in body["paging"]


@pytest.mark.parametrize("change", [
    {"name": "Bad Name"}, {"language": "portuguese"}, {"category": "PROMO"},
    {"components": []},
])
def test_create_template_validation(srv, http, change):
    payload = dict({"name": "lembrete_consulta", "language": "pt_BR", "category": "UTILITY",
                    "components": [{"type": "BODY", "text": "Olá {{1}}!"}]}, **change)
    resp = call(http, srv, "POST", "/%s/message_templates" % CLINIC_WABA, json=payload)
    assert resp.status_code == 400
    assert error_of(resp)["code"] == 100


def test_create_template_duplicate_then_auto_approve_webhook(srv, http, receiver):
    srv.configure(webhook_url=receiver.url)
    payload = {"name": "lembrete_consulta", "language": "pt_BR", "category": "UTILITY",
               "components": [{"type": "BODY", "text": "Olá {{1}}, até amanhã!"}]}
    resp = call(http, srv, "POST", "/%s/message_templates" % CLINIC_WABA, json=payload)
    assert resp.status_code == 200
    created = resp.json()
    assert created["status"] == "PENDING" and created["category"] == "UTILITY"
    dup = call(http, srv, "POST", "/%s/message_templates" % CLINIC_WABA, json=payload)
    err = error_of(dup)
    assert (dup.status_code, err["code"], err["error_subcode"]) == (400, 100, 2388023)
    assert err["message"] == "Message template with this name and language already exists"
    [hook] = receiver.wait_for(1, "message_template_status_update")
    value = hook["entry"][0]["changes"][0]["value"]
    assert hook["entry"][0]["id"] == CLINIC_WABA
    assert value["event"] == "APPROVED"
    assert value["message_template_id"] == int(created["id"])
    assert value["message_template_name"] == "lembrete_consulta"
    assert value["message_template_language"] == "pt_BR"
    listed = call(http, srv, "GET", "/%s/message_templates" % CLINIC_WABA,
                  params={"name": "lembrete_consulta"}).json()["data"]
    assert [t["status"] for t in listed] == ["APPROVED"]


def test_manual_template_status_via_control_api(srv, http, receiver):
    srv.configure(webhook_url=receiver.url, auto_approve_templates=False)
    resp = http.post(srv.url + "/_fake/templates/status",
                     json={"waba_id": CLINIC_WABA, "name": "appointment_confirmation",
                           "language": "pt_BR", "status": "PAUSED", "reason": "NONE"})
    assert resp.json()["status"] == "PAUSED"
    assert receiver.wait_for(1, "message_template_status_update")
    assert error_of(call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE,
                         json=confirmation()))["code"] == 132015


# ---------------------------------------------------------------------------------------------
# Embedded Signup code exchange
# ---------------------------------------------------------------------------------------------

def exchange(http, srv, code, client_id=APP_ID, secret=SECRET):
    return http.get(srv.url + V + "/oauth/access_token",
                    params={"client_id": client_id, "client_secret": secret, "code": code})


def test_code_exchange_is_single_use_and_binds_the_waba(srv, http):
    issued = http.post(srv.url + "/_fake/codes", json={"waba_id": CLINIC_WABA}).json()
    assert issued["waba_id"] == CLINIC_WABA and issued["phone_number_id"] == CLINIC_PHONE
    resp = exchange(http, srv, issued["code"])
    assert resp.status_code == 200
    token = resp.json()["access_token"]
    assert token.startswith("EAAG") and resp.json()["token_type"] == "bearer"
    assert call(http, srv, "GET", "/" + CLINIC_PHONE, token=token).ok
    assert call(http, srv, "GET", "/" + SALON_PHONE, token=token).status_code == 403
    again = exchange(http, srv, issued["code"])
    err = error_of(again)
    assert (again.status_code, err["code"], err["error_subcode"]) == (400, 100, 36007)
    assert err["message"] == "This authorization code has expired."
    assert err["type"] == "OAuthException"


def test_code_exchange_expires(srv, http):
    code = srv.issue_code(CLINIC_WABA, ttl=0.1)["code"]
    time.sleep(0.2)
    assert error_of(exchange(http, srv, code))["error_subcode"] == 36007


def test_code_exchange_checks_the_app(srv, http):
    code = srv.issue_code(CLINIC_WABA)["code"]
    resp = exchange(http, srv, code, secret="wrong")
    assert (resp.status_code, error_of(resp)["code"]) == (400, 101)
    assert error_of(resp)["message"] == "Error validating client secret."
    assert error_of(exchange(http, srv, code, client_id="42"))["code"] == 101
    assert exchange(http, srv, code).ok  # failed attempts do not burn the code


def test_seeded_demo_code_works_once_and_reset_restores_it(srv, http):
    assert exchange(http, srv, "AQDfakedemocodeclinic0001").ok
    assert not exchange(http, srv, "AQDfakedemocodeclinic0001").ok
    assert http.post(srv.url + "/_fake/reset").json() == {"success": True}
    assert exchange(http, srv, "AQDfakedemocodeclinic0001").ok


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------

def test_fault_status_and_code(srv, http):
    http.post(srv.url + "/_fake/faults", json={
        "match": {"method": "POST", "path": "/messages"}, "times": 1, "status": 429,
        "code": 130429, "message": "(#130429) Rate limit hit"})
    resp = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=text_message())
    assert resp.status_code == 429
    err = error_of(resp)
    assert err["code"] == 130429 and err["message"] == "(#130429) Rate limit hit"
    assert err["error_data"] == {"messaging_product": "whatsapp", "details": "Rate limit hit"}
    assert srv.messages() == []  # a throttled send is not sent
    assert call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=text_message()).ok


def test_fault_code_alone_gets_metas_http_status(srv, http):
    srv.add_fault([{"code": 131000}, {"code": 190}, {"code": 131016}, {"code": 200},
                   {"code": 80007}, {"code": 100, "subcode": 33}])
    got = [call(http, srv, "GET", "/" + CLINIC_PHONE) for _ in range(6)]
    assert [r.status_code for r in got] == [500, 401, 503, 403, 429, 400]
    assert error_of(got[-1])["error_subcode"] == 33


def test_http_status_table():
    assert [http_status_for_code(c) for c in (190, 200, 10, 368, 4, 80007, 130429, 131048,
                                              131056, 131000, 131016, 133004, 100, 131026)] == [
        401, 403, 403, 403, 429, 429, 429, 429, 429, 500, 503, 503, 400, 400]
    assert GraphError(100).body()["error"]["type"] == "OAuthException"


def test_fault_match_and_order(srv, http):
    srv.add_fault(match={"path": "/messages"}, code=131026)
    srv.add_fault(match={"method": "GET"}, status=503)
    srv.add_fault(match={"method": "GET"}, status=500, code=131000)
    assert call(http, srv, "GET", "/" + CLINIC_PHONE).status_code == 503
    assert call(http, srv, "GET", "/" + CLINIC_PHONE).status_code == 500
    assert call(http, srv, "GET", "/" + CLINIC_PHONE).ok
    assert error_of(call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE,
                         json=text_message()))["code"] == 131026
    assert srv.faults() == []


def test_fault_forever_until_cleared(srv, http):
    http.post(srv.url + "/_fake/faults", json=[{"times": None, "status": 503, "code": 131016}])
    assert all(call(http, srv, "GET", "/" + CLINIC_PHONE).status_code == 503 for _ in range(3))
    http.delete(srv.url + "/_fake/faults")
    assert call(http, srv, "GET", "/" + CLINIC_PHONE).ok


def test_fault_latency(srv, http):
    srv.add_fault(latency=0.3)
    started = time.monotonic()
    resp = call(http, srv, "GET", "/" + CLINIC_PHONE)
    assert resp.ok
    assert time.monotonic() - started >= 0.3


def test_fault_timeout_hangs_then_drops(srv, http):
    srv.add_fault(match={"path": "/messages"}, timeout=True, hang=1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.post(srv.url + V + "/%s/messages" % CLINIC_PHONE, json=text_message(),
                  headers={"Authorization": "Bearer " + CLINIC_TOKEN}, timeout=0.3)
    assert call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=text_message()).ok
    assert len(srv.messages()) == 1


def test_fault_drop_closes_without_answer(srv, http):
    srv.add_fault(drop=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        call(http, srv, "GET", "/" + CLINIC_PHONE)
    assert call(http, srv, "GET", "/" + CLINIC_PHONE).ok
    dropped = srv.requests()[0]
    assert dropped["status"] is None and dropped["fault"]


def test_fault_raw_body(srv, http):
    srv.add_fault(status=502, body="<html><body>Bad Gateway</body></html>")
    resp = call(http, srv, "GET", "/" + CLINIC_PHONE)
    assert resp.status_code == 502
    assert resp.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        resp.json()


def test_fault_after_processing_loses_the_answer_of_an_accepted_send(srv, http):
    srv.add_fault(match={"path": "/messages"}, drop=True, processed=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=text_message())
    assert len(srv.messages()) == 1


def test_bad_fault_and_config_are_rejected(srv, http):
    assert http.post(srv.url + "/_fake/faults", json={"staus": 500}).status_code == 400
    assert http.post(srv.url + "/_fake/config", json={"webhok_url": "x"}).status_code == 400
    assert http.get(srv.url + "/_fake/nope").status_code == 404


# ---------------------------------------------------------------------------------------------
# Recorded requests
# ---------------------------------------------------------------------------------------------

def test_requests_are_recorded_with_masked_auth(srv, http):
    call(http, srv, "GET", "/" + CLINIC_PHONE, params={"fields": "id"})
    call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=text_message())
    listed = http.get(srv.url + "/_fake/requests").json()
    assert [(r["method"], r["status"]) for r in listed] == [("GET", 200), ("POST", 200)]
    get, post = listed
    assert get["path"] == "%s/%s" % (V, CLINIC_PHONE)
    assert get["query"] == {"fields": "id"}
    assert post["json"]["to"] == "5511987651234"
    assert post["headers"]["Authorization"] == "Bearer …0001"
    assert CLINIC_TOKEN not in json.dumps(listed)
    assert isinstance(post["time"], float)
    assert [r["method"] for r in srv.requests(path_contains="/messages")] == ["POST"]
    assert [r["method"] for r in srv.requests(method="get")] == ["GET"]
    assert http.delete(srv.url + "/_fake/requests").ok
    assert srv.requests() == []


def test_state_masks_secrets(srv, http):
    state = http.get(srv.url + "/_fake/state").json()
    text = json.dumps(state)
    assert CLINIC_TOKEN not in text and SECRET not in text
    assert {w["id"] for w in state["wabas"]} == {CLINIC_WABA, SALON_WABA}
    assert state["wabas"][0]["phone_numbers"][0]["is_on_biz_app"] is True


# ---------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------

def test_webhook_is_signed_over_the_escaped_raw_bytes(srv, receiver):
    payload = {"object": "whatsapp_business_account", "entry": [{"id": CLINIC_WABA, "changes": [{
        "field": "messages", "value": {"text": "äöå Clínica"}}]}]}
    status, body = srv.deliver_webhook(payload, url=receiver.url)
    assert (status, body) == (200, "ok")
    [event] = receiver.events
    raw = event["raw"]
    assert b"\\u00e4\\u00f6\\u00e5 Cl\\u00ednica" in raw
    assert raw.isascii()
    assert event["headers"]["X-Hub-Signature-256"] == signature(raw)
    assert event["headers"]["Content-Type"] == "application/json"
    assert json.loads(raw) == payload


def test_webhook_with_bad_signature_and_raw_body_via_control_api(srv, http, receiver):
    receiver.status = 403
    resp = http.post(srv.url + "/_fake/webhook", json={
        "raw": '{"object":"whatsapp_business_account","entry":[]}', "url": receiver.url,
        "signature": "sha256=" + "0" * 64})
    assert resp.json()["status"] == 403
    event = receiver.events[0]
    assert event["raw"] == b'{"object":"whatsapp_business_account","entry":[]}'
    assert event["headers"]["X-Hub-Signature-256"] == "sha256=" + "0" * 64
    assert srv.webhook_log()[-1]["status"] == 403


def test_webhook_to_an_unreachable_target_is_logged(srv):
    status, error = srv.deliver_webhook({"object": "x"}, url="http://127.0.0.1:9/none")
    assert status is None and error
    assert srv.webhook_log()[-1]["error"]


def test_status_webhooks_after_a_send_carry_the_opaque_data(srv, http, receiver):
    srv.configure(webhook_url=receiver.url, status_sequence=["sent", "delivered", "read"])
    resp = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE,
                json=confirmation(biz_opaque_callback_data="appointment:42:reminder"))
    wamid = resp.json()["messages"][0]["id"]
    hooks = receiver.wait_for(3, "messages")
    statuses = [h["entry"][0]["changes"][0]["value"]["statuses"][0] for h in hooks]
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    for hook, item in zip(hooks, statuses):
        assert hook["object"] == "whatsapp_business_account"
        assert hook["entry"][0]["id"] == CLINIC_WABA
        value = hook["entry"][0]["changes"][0]["value"]
        assert value["messaging_product"] == "whatsapp"
        assert value["metadata"] == {"display_phone_number": "5511987654321",
                                     "phone_number_id": CLINIC_PHONE}
        assert item["id"] == wamid
        assert item["recipient_id"] == "5511987651234"
        assert item["biz_opaque_callback_data"] == "appointment:42:reminder"
        assert "conversation" not in item
        assert item["timestamp"].isdigit()
    assert statuses[0]["pricing"] == {"billable": True, "pricing_model": "PMP",
                                      "type": "regular", "category": "utility"}
    assert statuses[1]["pricing"] == statuses[0]["pricing"]  # "sent and one of delivered/read"
    assert "pricing" not in statuses[2]
    for event in receiver.events:
        assert event["headers"]["X-Hub-Signature-256"] == signature(event["raw"])


def test_no_opaque_data_no_key_and_recipient_failure(srv, http, receiver):
    srv.configure(webhook_url=receiver.url, recipient_failures={"5511987651234": 131026})
    call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=text_message())
    [hook] = receiver.wait_for(1, "messages")
    item = hook["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert item["status"] == "failed"
    assert "biz_opaque_callback_data" not in item
    assert item["errors"][0]["code"] == 131026
    assert item["errors"][0]["error_data"]["details"]


def test_scheduled_webhooks_retry_and_duplicate_with_identical_bytes(srv, http, receiver):
    receiver.status = 500
    srv.configure(webhook_url=receiver.url, status_sequence=["sent"], webhook_retries=2,
                  webhook_retry_delay=0.01)
    call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=text_message())
    receiver.wait_for(3, "messages")
    assert srv.wait_webhooks(5)
    assert len(receiver.events) == 3
    assert len({e["raw"] for e in receiver.events}) == 1
    assert [e["status"] for e in srv.webhook_log()] == [500, 500, 500]
    receiver.status = 200
    receiver.events.clear()
    srv.configure(webhook_duplicates=True)
    call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=text_message(to="5511900000001"))
    first, second = receiver.wait_for(2, "messages")
    assert first == second
    assert receiver.events[0]["headers"]["X-Hub-Signature-256"] == receiver.events[1][
        "headers"]["X-Hub-Signature-256"]


def test_send_status_on_demand(srv, http, receiver):
    srv.configure(status_sequence=[])
    wamid = call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE,
                 json=text_message()).json()["messages"][0]["id"]
    resp = http.post(srv.url + "/_fake/status", json={"wamid": wamid, "status": "read",
                                                      "url": receiver.url})
    assert resp.json()["status"] == 200
    item = receiver.payloads()[0]["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert (item["id"], item["status"]) == (wamid, "read")


def test_no_webhooks_without_a_target(srv, http):
    call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=text_message())
    assert srv.wait_webhooks(2)
    assert srv.webhook_log() == []


def test_inbound_and_echo_control_endpoints(srv, http, receiver):
    srv.configure(webhook_url=receiver.url)
    resp = http.post(srv.url + "/_fake/inbound", json={
        "phone_number_id": CLINIC_PHONE, "from": "5511987651234", "text": "Quero remarcar",
        "name": "João Pereira"}).json()
    assert resp["status"] == 200 and resp["wamid"].startswith("wamid.")
    hook = receiver.payloads("messages")[0]
    value = hook["entry"][0]["changes"][0]["value"]
    assert value["contacts"] == [{"profile": {"name": "João Pereira"}, "wa_id": "5511987651234"}]
    assert value["messages"][0]["text"] == {"body": "Quero remarcar"}
    assert value["messages"][0]["from"] == "5511987651234"
    assert b"Jo\\u00e3o" in receiver.events[0]["raw"]
    srv.send_inbound(CLINIC_PHONE, "5511987651234", button={"payload": "CONFIRM:42",
                                                            "text": "Confirmar"},
                     context_id="wamid.ctx")
    tap = receiver.payloads("messages")[1]["entry"][0]["changes"][0]["value"]["messages"][0]
    assert tap["type"] == "button" and tap["button"]["payload"] == "CONFIRM:42"
    assert tap["context"] == {"from": "5511987654321", "id": "wamid.ctx"}
    http.post(srv.url + "/_fake/echo", json={"phone_number_id": CLINIC_PHONE,
                                             "to": "5511987651234", "text": "Até já!"})
    [echo] = receiver.payloads("smb_message_echoes")
    item = echo["entry"][0]["changes"][0]["value"]["message_echoes"][0]
    assert (item["from"], item["to"], item["text"]["body"]) == (
        "5511987654321", "5511987651234", "Até já!")


def test_account_update_and_verify_challenge(srv, http, receiver):
    srv.configure(webhook_url=receiver.url)
    srv.send_account_update(CLINIC_WABA, "PARTNER_REMOVED", phone_number="5511987654321",
                            disconnection_info={"reason": "PRIMARY_INACTIVITY",
                                                "initiated_by": "SYSTEM"})
    [hook] = receiver.payloads("account_update")
    assert hook["entry"][0]["id"] == CLINIC_WABA and "time" in hook["entry"][0]
    assert hook["entry"][0]["changes"][0]["value"]["event"] == "PARTNER_REMOVED"
    assert srv.verify_webhook("vt", challenge="1158201444") == (200, "1158201444")
    assert http.post(srv.url + "/_fake/verify", json={"verify_token": "bad"}).json()[
        "status"] == 403


# ---------------------------------------------------------------------------------------------
# Coexistence onboarding: subscribed_apps, register, smb_app_data
# ---------------------------------------------------------------------------------------------

def test_subscribed_apps_and_override_callback(srv, http, receiver):
    path = "/%s/subscribed_apps" % CLINIC_WABA
    assert call(http, srv, "GET", path).json() == {"data": []}
    srv.configure(webhook_url="http://127.0.0.1:9/unused", verify_callback=True,
                  require_subscription=True)
    bad = call(http, srv, "POST", path, json={"override_callback_uri": receiver.url,
                                              "verify_token": "wrong"})
    assert error_of(bad)["code"] == 2200
    assert call(http, srv, "POST", path, json={"override_callback_uri": receiver.url,
                                               "verify_token": "vt"}).json() == {"success": True}
    data = call(http, srv, "GET", path).json()["data"]
    assert data[0]["whatsapp_business_api_data"] == {"id": APP_ID, "name": "Fake App"}
    call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=text_message())
    assert receiver.wait_for(2, "messages")
    assert call(http, srv, "DELETE", path).json() == {"success": True}
    assert call(http, srv, "GET", path).json() == {"data": []}


def test_register_is_recorded(srv, http):
    body = {"messaging_product": "whatsapp", "pin": "123456"}
    assert call(http, srv, "POST", "/%s/register" % SALON_PHONE, token=SALON_TOKEN,
                json=body).json() == {"success": True}
    assert srv.requests(path_contains="/register", method="POST")[0]["status"] == 200
    state = srv.snapshot()
    phones = {p["id"]: p for w in state["wabas"] for p in w["phone_numbers"]}
    assert len(phones[SALON_PHONE]["registrations"]) == 1
    assert phones[CLINIC_PHONE]["registrations"] == []


def test_smb_app_data_contacts_then_history_once_each(srv, http, receiver):
    srv.configure(webhook_url=receiver.url)
    path = "/%s/smb_app_data" % CLINIC_PHONE
    resp = call(http, srv, "POST", path, json={"messaging_product": "whatsapp",
                                               "sync_type": "smb_app_state_sync"})
    assert resp.status_code == 200
    assert resp.json()["messaging_product"] == "whatsapp" and resp.json()["request_id"]
    [contacts] = receiver.wait_for(1, "smb_app_state_sync")
    value = contacts["entry"][0]["changes"][0]["value"]
    assert value["metadata"]["phone_number_id"] == CLINIC_PHONE
    items = value["state_sync"]
    assert len(items) == 4
    assert items[0]["type"] == "contact" and items[0]["action"] == "add"
    assert items[0]["contact"] == {"full_name": "Maria Silva", "first_name": "Maria",
                                   "phone_number": "5511991234567"}
    assert items[0]["metadata"]["timestamp"].isdigit()

    resp = call(http, srv, "POST", path, json={"messaging_product": "whatsapp",
                                               "sync_type": "history"})
    assert resp.ok
    assert srv.wait_webhooks(5)
    chunks = receiver.payloads("history")
    metas = [c["entry"][0]["changes"][0]["value"]["history"][0]["metadata"]
             for c in chunks if "history" in c["entry"][0]["changes"][0]["value"]]
    assert [m["phase"] for m in metas] == [0, 1, 2]
    assert [m["chunk_order"] for m in metas] == [1, 1, 1]
    assert metas[-1]["progress"] == 100
    assert all(a["progress"] < b["progress"] for a, b in itertools.pairwise(metas))
    first = chunks[0]["entry"][0]["changes"][0]["value"]["history"][0]["threads"][0]
    assert first["id"] == "551191234567"
    assert first["messages"][0]["from"] == "551191234567"
    assert first["messages"][1]["from"] == "5511987654321"  # sent by the business
    assert first["messages"][0]["history_context"] == {"status": "READ"}
    media = [c["entry"][0]["changes"][0]["value"]["messages"][0]
             for c in chunks if "messages" in c["entry"][0]["changes"][0]["value"]]
    assert media[0]["type"] == "image" and media[0]["image"]["id"] == "24230790383178626"

    for sync_type in ("smb_app_state_sync", "history"):
        again = call(http, srv, "POST", path, json={"messaging_product": "whatsapp",
                                                    "sync_type": sync_type})
        assert again.status_code == 400
        assert error_of(again)["code"] == 100
        assert "already requested" in error_of(again)["message"]


def test_smb_app_data_rejects_non_coexistence_numbers_and_bad_types(srv, http):
    resp = call(http, srv, "POST", "/%s/smb_app_data" % SALON_PHONE, token=SALON_TOKEN,
                json={"messaging_product": "whatsapp", "sync_type": "history"})
    assert resp.status_code == 400
    resp = call(http, srv, "POST", "/%s/smb_app_data" % CLINIC_PHONE,
                json={"messaging_product": "whatsapp", "sync_type": "everything"})
    assert error_of(resp)["code"] == 100


def test_history_declined_sends_2593109(receiver):
    seed = fake_graph.load_seed()
    seed["wabas"][0]["phone_numbers"][0]["history_declined"] = True
    with FakeGraphServer(port=0, app_secret=SECRET, seed=seed, webhook_url=receiver.url,
                         history_delay=0.0) as server:
        session = requests.Session()
        session.trust_env = False
        call(session, server, "POST", "/%s/smb_app_data" % CLINIC_PHONE,
             json={"messaging_product": "whatsapp", "sync_type": "history"})
        [hook] = receiver.wait_for(1, "history")
        error = hook["entry"][0]["changes"][0]["value"]["history"][0]["errors"][0]
        assert error["code"] == 2593109


# ---------------------------------------------------------------------------------------------
# Lifecycle, speed, CLI
# ---------------------------------------------------------------------------------------------

def test_reset_restores_the_seed(srv, http):
    call(http, srv, "POST", "/%s/messages" % CLINIC_PHONE, json=text_message())
    call(http, srv, "POST", "/%s/smb_app_data" % CLINIC_PHONE,
         json={"messaging_product": "whatsapp", "sync_type": "history"})
    srv.configure(latency=0.01)
    srv.add_fault(status=500)
    srv.reset()
    assert srv.messages() == [] and srv.requests() == [] and srv.faults() == []
    assert srv.config["latency"] == 0.0
    assert call(http, srv, "POST", "/%s/smb_app_data" % CLINIC_PHONE,
                json={"messaging_product": "whatsapp", "sync_type": "history"}).ok


def test_stop_does_not_wait_for_a_hanging_fault():
    server = FakeGraphServer(port=0).start()
    server.add_fault(timeout=True, hang=30)
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.exceptions.ReadTimeout):
        call(session, server, "GET", "/" + CLINIC_PHONE, timeout=0.2)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3


def test_three_hundred_keep_alive_requests(srv):
    conn = HTTPConnection("127.0.0.1", srv.port, timeout=5)
    headers = {"Authorization": "Bearer " + CLINIC_TOKEN}
    body = json.dumps(text_message()).encode()
    started = time.monotonic()
    for i in range(300):
        if i % 2:
            conn.request("GET", "%s/%s?fields=id" % (V, CLINIC_PHONE), headers=headers)
        else:
            conn.request("POST", "%s/%s/messages" % (V, CLINIC_PHONE), body=body,
                         headers=dict(headers, **{"Content-Type": "application/json"}))
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
    elapsed = time.monotonic() - started
    conn.close()
    assert len(srv.messages()) == 150
    assert elapsed < 3, "300 keep-alive requests took %.2f s" % elapsed


def test_cli_prints_url_and_token_suffixes():
    env = dict(os.environ, PYTHONPATH=str(TOOLS_DIR))
    proc = subprocess.Popen([sys.executable, "-m", "fake_graph", "--port", "0",
                             "--app-secret", "cli-secret"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [proc.stdout.readline() for _ in range(6)]
        url = lines[0].split()[-1]
        assert url.startswith("http://127.0.0.1:")
        out = "".join(lines)
        assert "…0001" in out and "…0002" in out and CLINIC_TOKEN not in out
        session = requests.Session()
        session.trust_env = False
        resp = session.get(url + V + "/" + CLINIC_PHONE,
                           headers={"Authorization": "Bearer " + CLINIC_TOKEN}, timeout=5)
        assert resp.ok
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
    assert proc.stderr.read() == ""  # quiet by default


def test_package_uses_relative_imports_only():
    # Odoo imports it as odoo.addons.whatsapp_coexistence.tools.fake_graph.
    for path in (TOOLS_DIR / "fake_graph").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert "import fake_graph" not in source and "from fake_graph" not in source, path
        assert "wa_cloud" not in source, path
