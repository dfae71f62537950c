"""The fake Graph server's media uploads (``POST /{phone_number_id}/media``) and media sends,
over real HTTP with hand-built multipart bodies, judged like Meta."""

import pytest
import requests

from fake_graph import FakeGraphServer

CLINIC_PHONE = "106540352242922"
SALON_PHONE = "206540352242922"
CLINIC_TOKEN = "EAAGfakeclinic0000000000000000000001"
SALON_TOKEN = "EAAGfakesalon000000000000000000000002"
V = "/v25.0"
MB = 1024 * 1024


@pytest.fixture
def srv():
    with FakeGraphServer(port=0, app_secret="s", status_delay=0) as server:
        yield server


def upload(srv, content, mime, name="f", phone=CLINIC_PHONE, token=CLINIC_TOKEN,
           product="whatsapp"):
    return requests.post(
        f"{srv.url}{V}/{phone}/media", headers={"Authorization": f"Bearer {token}"},
        data={"messaging_product": product, "type": mime},
        files={"file": (name, content, mime)}, timeout=10)


def send(srv, payload, phone=CLINIC_PHONE, token=CLINIC_TOKEN):
    return requests.post(f"{srv.url}{V}/{phone}/messages", json=payload, timeout=10,
                         headers={"Authorization": f"Bearer {token}"})


def media_message(kind, media, to="5511987651234"):
    return {"messaging_product": "whatsapp", "to": to, "type": kind, kind: media}


def test_upload_stores_the_bytes_and_answers_an_id(srv):
    resp = upload(srv, b"%PDF-1.7 body", "application/pdf", "guia.pdf")
    assert resp.status_code == 200
    media_id = resp.json()["id"]
    assert media_id.isdigit()
    stored = srv.upload(media_id)
    assert (stored["content"], stored["filename"], stored["kind"]) == (
        b"%PDF-1.7 body", "guia.pdf", "document")
    assert srv.uploads()[0]["size"] == len(b"%PDF-1.7 body")
    assert "content" not in srv.uploads()[0]


def test_unsupported_type_is_meta_code_100_with_the_type_list(srv):
    resp = upload(srv, b"GIF89a", "image/gif")
    error = resp.json()["error"]
    assert resp.status_code == 400 and error["code"] == 100
    assert error["message"].startswith("(#100) Param file must be a file with one of the "
                                       "following types:")
    assert "Received file of type 'image/gif'" in error["message"]
    assert srv.uploads() == []


@pytest.mark.parametrize("mime, limit", [("image/png", 5 * MB), ("audio/mpeg", 16 * MB)])
def test_file_over_the_kind_limit_is_131053(srv, mime, limit):
    assert upload(srv, b"\x01" * limit, mime).status_code == 200
    resp = upload(srv, b"\x01" * (limit + 1), mime)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == 131053
    assert len(srv.uploads()) == 1


def test_upload_needs_messaging_product_and_token(srv):
    assert upload(srv, b"x", "text/plain", product="sms").json()["error"]["code"] == 100
    assert upload(srv, b"x", "text/plain", token="nope").json()["error"]["code"] == 190
    assert upload(srv, b"x", "text/plain", phone=SALON_PHONE).json()["error"]["code"] == 200


def test_upload_fault_is_answered_and_stores_nothing(srv):
    srv.add_fault(match={"method": "POST", "path": "/media"}, status=500, code=131000)
    resp = upload(srv, b"x", "text/plain")
    assert (resp.status_code, resp.json()["error"]["code"]) == (500, 131000)
    assert srv.uploads() == []
    assert srv.requests(path_contains="/media")[0]["fault"]


def test_media_send_by_uploaded_id_is_accepted_and_recorded(srv):
    media_id = upload(srv, b"\x89PNG....", "image/png").json()["id"]
    resp = send(srv, media_message("image", {"id": media_id, "caption": "Olá"}))
    assert resp.status_code == 200
    record = srv.messages()[-1]
    assert record["type"] == "image" and record["payload"]["image"]["id"] == media_id


def test_unknown_or_foreign_media_id_is_accepted_then_fails_131053(srv):
    salon_id = upload(srv, b"x", "text/plain", phone=SALON_PHONE, token=SALON_TOKEN).json()["id"]
    for media_id in ("999", salon_id):
        assert send(srv, media_message("document", {"id": media_id})).status_code == 200
    with srv.state.lock:
        plans = [m["plan"] for m in list(srv.state.messages.values())[-2:]]
    assert plans == [[("failed", 131053)], [("failed", 131053)]]


def test_media_object_without_id_or_link_is_code_100(srv):
    resp = send(srv, media_message("video", {"caption": "no file"}))
    assert resp.status_code == 400 and resp.json()["error"]["code"] == 100


# --------------------------------------------------------------------------- templates

IMAGE_TEMPLATE = {"name": "consulta_imagem", "language": "pt_BR", "category": "UTILITY",
                  "components": [
                      {"type": "HEADER", "format": "IMAGE"},
                      {"type": "BODY", "text": "Olá {{1}}"},
                      {"type": "BUTTONS", "buttons": [
                          {"type": "URL", "text": "Ver", "url": "https://c.example/{{1}}"}]}]}


def template_send(header=None, button=None):
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Maria"}]}]
    if header is not None:
        components.insert(0, {"type": "header", "parameters": header})
    if button is not None:
        components.append({"type": "button", "sub_type": "url", "index": "0",
                           "parameters": button})
    return {"messaging_product": "whatsapp", "to": "5511987651234", "type": "template",
            "template": {"name": "consulta_imagem", "language": {"code": "pt_BR"},
                         "components": components}}


@pytest.fixture
def image_template(srv):
    with srv.state.lock:
        tpl = srv.state._new_template_record(
            next(iter(srv.state.wabas)), dict(IMAGE_TEMPLATE, status="APPROVED"))
        srv.state.wabas[tpl["waba_id"]]["template_ids"].append(tpl["id"])
    assert srv.state.phones[CLINIC_PHONE]["waba_id"] == tpl["waba_id"]
    return tpl


@pytest.mark.parametrize("header, button, code", [
    (None, [{"type": "text", "text": "42"}], 132000),
    ([{"type": "document", "document": {"id": "1"}}], [{"type": "text", "text": "42"}], 132012),
    ([{"type": "image", "image": {}}], [{"type": "text", "text": "42"}], 132012),
    ([{"type": "image", "image": {"link": "https://x.example/a.png"}}], None, 132000),
    ([{"type": "image", "image": {"link": "https://x.example/a.png"}}],
     [{"type": "text", "text": " "}], 131008),
])
def test_media_header_and_url_button_are_checked_like_meta(srv, image_template, header,
                                                            button, code):
    resp = send(srv, template_send(header, button))
    assert resp.json()["error"]["code"] == code, resp.json()


def test_template_with_uploaded_header_is_accepted_and_unknown_id_fails_later(
        srv, image_template):
    media_id = upload(srv, b"\x89PNG....", "image/png").json()["id"]
    ok = send(srv, template_send([{"type": "image", "image": {"id": media_id}}],
                                 [{"type": "text", "text": "42"}]))
    assert ok.status_code == 200, ok.json()
    unknown = send(srv, template_send([{"type": "image", "image": {"id": "404"}}],
                                      [{"type": "text", "text": "42"}]))
    assert unknown.status_code == 200
    with srv.state.lock:
        plans = [m["plan"] for m in list(srv.state.messages.values())[-2:]]
    assert plans[0] != [("failed", 131053)] and plans[1] == [("failed", 131053)]
