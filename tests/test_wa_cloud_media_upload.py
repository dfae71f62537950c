"""Outbound media, pure layer: Meta's limits, the message builders, and ``upload_media`` over
real HTTP into the fake Graph server (multipart on the wire, Meta's answers)."""

import io

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from fake_graph import FakeGraphServer
from wa_cloud.client import GraphClient
from wa_cloud.errors import PermanentError, RetryableError, TransportError, WaCloudError
from wa_cloud.media_limits import (
    CAPTION_LIMIT,
    KINDS,
    MB,
    OUTBOUND_KINDS,
    MediaRejected,
    check_media,
    kind_of,
    normalize_mime,
)

CLINIC_PHONE = "106540352242922"
SALON_PHONE = "206540352242922"
CLINIC_TOKEN = "EAAGfakeclinic0000000000000000000001"
PDF = b"%PDF-1.4\n" + b"x" * 2000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 500


@pytest.fixture
def srv():
    with FakeGraphServer(port=0, app_secret="s", status_delay=0) as server:
        yield server


@pytest.fixture
def client(srv):
    return GraphClient(CLINIC_TOKEN, base_url=srv.url, session=requests.Session())


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize("mime, kind", [
    ("image/jpeg", "image"), ("image/png", "image"), ("audio/ogg; codecs=opus", "audio"),
    ("audio/mpeg", "audio"), ("video/mp4", "video"), ("video/3gpp", "video"),
    ("application/pdf", "document"), ("text/plain", "document"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "document"),
])
def test_kind_follows_the_mime_type(mime, kind):
    assert kind_of(mime).name == kind
    assert check_media(mime, 1000).name == kind


@pytest.mark.parametrize("mime", ["image/webp", "image/gif", "application/zip",
                                  "application/octet-stream", "", None, "text/html"])
def test_types_meta_refuses_are_refused_before_upload(mime):
    with pytest.raises(MediaRejected) as info:
        check_media(mime, 1000)
    assert info.value.reason == "type"


@pytest.mark.parametrize("kind, limit", [("image", 5 * MB), ("audio", 16 * MB),
                                         ("video", 16 * MB), ("document", 100 * MB)])
def test_size_limit_per_kind_is_inclusive(kind, limit):
    mime = KINDS[kind].mime_types[0]
    assert check_media(mime, limit).name == kind
    with pytest.raises(MediaRejected) as info:
        check_media(mime, limit + 1)
    assert (info.value.reason, info.value.kind.name, info.value.size) == ("size", kind,
                                                                          limit + 1)


def test_empty_file_and_wrong_kind_are_refused():
    with pytest.raises(MediaRejected) as info:
        check_media("image/png", 0)
    assert info.value.reason == "empty"
    with pytest.raises(MediaRejected) as info:
        check_media("application/pdf", 10, kind="image")
    assert (info.value.reason, info.value.kind.name) == ("kind", "image")


@given(st.sampled_from(sorted({m for k in OUTBOUND_KINDS for m in KINDS[k].mime_types})),
       st.integers(min_value=-10, max_value=120 * MB))
def test_check_media_accepts_exactly_what_fits(mime, size):
    kind = kind_of(mime)
    fits = 0 < size <= kind.max_bytes
    try:
        assert check_media(mime.upper() + "; x=1", size) is kind
        accepted = True
    except MediaRejected as error:
        accepted = False
        assert error.reason == ("empty" if size <= 0 else "size")
    assert accepted == fits


def test_normalize_mime():
    assert normalize_mime(" Audio/OGG ; codecs=opus") == "audio/ogg"
    assert normalize_mime("video/3gp") == "video/3gpp"
    assert normalize_mime(None) == ""


def test_3gp_video_is_uploaded_as_the_type_meta_accepts(srv, client):
    media_id = client.upload_media(CLINIC_PHONE, b"\x00\x00\x00\x14ftyp3gp4", "video/3gp",
                                   "clip.3gp")
    assert srv.upload(media_id)["content_type"] == "video/3gpp"


# --------------------------------------------------------------------------- builders


def test_image_payload_carries_id_and_caption():
    payload = GraphClient.build_media_payload("5511987651234", "image", "1234", caption="Hi",
                                              biz_opaque_callback_data="reply:7")
    assert payload == {
        "messaging_product": "whatsapp", "recipient_type": "individual",
        "to": "5511987651234", "type": "image", "image": {"id": "1234", "caption": "Hi"},
        "biz_opaque_callback_data": "reply:7",
    }


def test_document_keeps_filename_and_audio_drops_caption():
    doc = GraphClient.build_media_payload("55119", "document", "9", caption="Receipt",
                                          filename="receipt.pdf", context_wamid="wamid.X")
    assert doc["document"] == {"id": "9", "caption": "Receipt", "filename": "receipt.pdf"}
    assert doc["context"] == {"message_id": "wamid.X"}
    audio = GraphClient.build_media_payload("55119", "audio", "9", caption="x", filename="a")
    assert audio["audio"] == {"id": "9"}
    video = GraphClient.build_media_payload("55119", "video", "9", caption="x", filename="a")
    assert video["video"] == {"id": "9", "caption": "x"}


@pytest.mark.parametrize("kwargs", [
    {"kind": "sticker", "media_id": "1"}, {"kind": "text", "media_id": "1"},
    {"kind": "image", "media_id": ""}, {"kind": "image", "media_id": "1/../x"},
    {"kind": "image", "media_id": "1", "caption": "x" * (CAPTION_LIMIT + 1)},
])
def test_builder_refuses_what_meta_would(kwargs):
    with pytest.raises(ValueError):
        GraphClient.build_media_payload("55119", **kwargs)


# --------------------------------------------------------------------------- upload over HTTP


def test_upload_sends_multipart_and_returns_the_fake_media_id(srv, client):
    media_id = client.upload_media(CLINIC_PHONE, io.BytesIO(PDF), "application/pdf",
                                   "receipt.pdf")
    stored = srv.upload(media_id)
    assert stored["content"] == PDF
    assert (stored["kind"], stored["filename"], stored["content_type"]) == (
        "document", "receipt.pdf", "application/pdf")
    request = srv.requests(path_contains="/media")[-1]
    assert request["path"] == f"/v25.0/{CLINIC_PHONE}/media"
    assert request["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert request["json"]["messaging_product"] == "whatsapp"
    assert request["json"]["type"] == "application/pdf"
    assert request["json"]["files"]["file"]["size"] == len(PDF)
    assert "content" not in request["json"]["files"]["file"]


def test_uploaded_id_sends_as_image_and_the_fake_records_it(srv, client):
    media_id = client.upload_media(CLINIC_PHONE, PNG, "image/png", "x-ray.png")
    payload = client.build_media_payload("5511987651234", "image", media_id, caption="Raio-X",
                                         biz_opaque_callback_data="reply:1")
    result = client.send_message(CLINIC_PHONE, payload)
    sent = srv.messages()[-1]
    assert (sent["wamid"], sent["type"]) == (result.wamid, "image")
    assert sent["payload"]["image"] == {"id": media_id, "caption": "Raio-X"}


def test_too_large_file_never_reaches_meta(srv, client):
    big = io.BytesIO(b"\xff" * (5 * MB + 1))
    with pytest.raises(MediaRejected) as info:
        client.upload_media(CLINIC_PHONE, big, "image/jpeg", "big.jpg")
    assert info.value.reason == "size"
    assert big.tell() == 0
    assert not srv.requests(path_contains="/media")


def test_refused_type_never_reaches_meta(srv, client):
    with pytest.raises(MediaRejected):
        client.upload_media(CLINIC_PHONE, b"GIF89a", "image/gif", "a.gif")
    assert not srv.requests(path_contains="/media")


def test_upload_fault_is_a_typed_retryable_error(srv, client):
    srv.add_fault(match={"path": "/media"}, status=503, code=131016)
    with pytest.raises(RetryableError):
        client.upload_media(CLINIC_PHONE, PDF, "application/pdf", "a.pdf")
    srv.add_fault(match={"path": "/media"}, drop=True)
    with pytest.raises(TransportError):
        client.upload_media(CLINIC_PHONE, PDF, "application/pdf", "a.pdf")
    assert srv.uploads() == []


def test_upload_answer_without_id_is_permanent(srv, client):
    srv.add_fault(match={"path": "/media"}, status=200, body={"ok": True},
                  content_type="application/json")
    with pytest.raises(PermanentError):
        client.upload_media(CLINIC_PHONE, PDF, "application/pdf", "a.pdf")


def test_token_never_appears_in_upload_errors(srv, client):
    srv.add_fault(match={"path": "/media"}, status=400, code=100,
                  message=f"bad token {CLINIC_TOKEN}")
    with pytest.raises(WaCloudError) as info:
        client.upload_media(CLINIC_PHONE, PDF, "application/pdf", "a.pdf")
    assert CLINIC_TOKEN not in str(info.value)
