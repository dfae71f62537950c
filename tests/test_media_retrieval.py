"""Inbound media retrieval: the Graph client's ``get_media_url`` and streamed
``download_media`` against the fake Graph server (real HTTP), its faults, its signed media
webhooks, and the allowlist of ``wa_cloud.media``."""

import hashlib
import io
import json
import logging

import pytest
import requests
from test_fake_graph import (
    CLINIC_PHONE,
    CLINIC_TOKEN,
    CLINIC_WABA,
    SALON_TOKEN,
    SECRET,
    Receiver,
)

from fake_graph import FakeGraphServer
from wa_cloud.client import GraphClient
from wa_cloud.errors import AuthError, PermanentError, TransportError
from wa_cloud.media import (
    MB,
    MediaRefused,
    check_allowed,
    file_name,
    size_limit,
)
from wa_cloud.signature import verify


@pytest.fixture
def hooks():
    rcv = Receiver()
    yield rcv
    rcv.close()


@pytest.fixture
def srv():
    server = FakeGraphServer(port=0, app_secret=SECRET)
    server.start()
    yield server
    server.stop()


def client(srv, token=CLINIC_TOKEN):
    graph = GraphClient(token, base_url=srv.url, timeout=5)
    graph.session = requests.Session()
    graph.session.trust_env = False
    return graph


def fetch(graph, media_id, max_bytes=5 * MB, media_type="image"):
    sink = io.BytesIO()
    info = graph.get_media_url(media_id)
    result = graph.download_media(info, sink, max_bytes=max_bytes, media_type=media_type)
    return info, result, sink.getvalue()


class CountingSink:
    """A sink that keeps no bytes: only how many and the largest single write."""

    def __init__(self):
        self.size = 0
        self.largest = 0

    def write(self, chunk):
        self.size += len(chunk)
        self.largest = max(self.largest, len(chunk))


# -- the client against the fake -------------------------------------------------------------

def test_media_url_then_authenticated_download(srv):
    jpeg = b"\xff\xd8\xff" + b"x" * 3000
    item = srv.add_media(CLINIC_WABA, "image/jpeg", data=jpeg)
    info, result, data = fetch(client(srv), item["id"])
    assert (info.mime_type, info.file_size, info.sha256) == (
        "image/jpeg", len(jpeg), hashlib.sha256(jpeg).hexdigest())
    assert data == jpeg
    assert (result.size, result.sha256) == (len(jpeg), hashlib.sha256(jpeg).hexdigest())
    download = srv.requests(path_contains="/_media/")[0]
    assert download["headers"]["Authorization"].startswith("Bearer ")
    assert CLINIC_TOKEN not in json.dumps(download)


def test_download_streams_in_chunks(srv):
    item = srv.add_media(CLINIC_WABA, "application/pdf", size=20 * MB)
    graph = client(srv)
    sink = CountingSink()
    result = graph.download_media(graph.get_media_url(item["id"]), sink, max_bytes=100 * MB)
    assert (sink.size, result.sha256) == (20 * MB, item["sha256"])
    assert sink.largest <= 65536


def test_download_link_needs_the_token_of_the_media_business(srv):
    item = srv.add_media(CLINIC_WABA, "image/png", data=b"png")
    info = client(srv).get_media_url(item["id"])
    session = requests.Session()
    session.trust_env = False
    assert session.get(info.url, timeout=5).status_code == 401
    assert session.get(info.url, headers={"Authorization": "Bearer " + SALON_TOKEN},
                       timeout=5).status_code == 401
    forged = info.url.replace("hash=", "hash=0")
    assert session.get(forged, headers={"Authorization": "Bearer " + CLINIC_TOKEN},
                       timeout=5).status_code == 404


def test_another_business_cannot_see_the_media_id(srv):
    item = srv.add_media(CLINIC_WABA, "image/png", data=b"png")
    with pytest.raises(PermanentError) as err:
        client(srv, SALON_TOKEN).get_media_url(item["id"])
    assert (err.value.code, err.value.subcode) == (100, 33)


def test_unknown_media_id_is_a_permanent_code_100(srv):
    with pytest.raises(PermanentError) as err:
        client(srv).get_media_url("123456789012345")
    assert err.value.code == 100


def test_expired_link_is_retryable_and_a_new_link_works(srv):
    item = srv.add_media(CLINIC_WABA, "image/jpeg", data=b"jpeg")
    srv.configure(media_url_ttl=0)
    graph = client(srv)
    info = graph.get_media_url(item["id"])
    with pytest.raises(TransportError, match="expired") as err:
        graph.download_media(info, io.BytesIO(), max_bytes=MB)
    assert err.value.http_status == 404
    assert "hash=" not in str(err.value)  # the signed link stays out of messages
    srv.configure(media_url_ttl=300)
    assert fetch(graph, item["id"])[2] == b"jpeg"


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 503, "body": "<html>down"},
                                   {"drop": True}, {"timeout": True, "hang": 3}])
def test_download_faults_are_retryable(srv, fault):
    item = srv.add_media(CLINIC_WABA, "image/jpeg", data=b"j" * 1000)
    srv.add_fault(match={"path": "/_media/"}, **fault)
    graph = client(srv)
    graph.timeout = 1
    with pytest.raises(TransportError):
        fetch(graph, item["id"])
    assert fetch(graph, item["id"])[2] == b"j" * 1000  # the fault was for one request


def test_truncated_download_is_retryable(srv):
    item = srv.add_media(CLINIC_WABA, "application/pdf", size=300000)
    srv.add_fault(match={"path": "/_media/"}, truncate=70000)
    with pytest.raises(TransportError):
        fetch(client(srv), item["id"], max_bytes=100 * MB, media_type="document")


def test_corrupt_download_is_retryable(srv):
    item = srv.add_media(CLINIC_WABA, "image/jpeg", data=b"jpeg", sha256="0" * 64)
    with pytest.raises(TransportError, match="sha256"):
        fetch(client(srv), item["id"])


def test_over_the_limit_stops_before_reading(srv):
    item = srv.add_media(CLINIC_WABA, "image/jpeg", size=6 * MB)
    sink = CountingSink()
    graph = client(srv)
    with pytest.raises(MediaRefused) as err:
        graph.download_media(graph.get_media_url(item["id"]), sink, max_bytes=5 * MB)
    assert (err.value.reason, sink.size) == ("too_large", 0)
    assert not srv.requests(path_contains="/_media/")  # refused on the announced size


def test_over_the_limit_counted_when_nothing_announced(srv):
    item = srv.add_media(CLINIC_WABA, "image/jpeg", size=300000)
    graph = client(srv)
    info = graph.get_media_url(item["id"])
    unannounced = type(info)(info.media_id, info.url, info.mime_type, None, None)
    sink = CountingSink()
    with pytest.raises(MediaRefused, match="exceeds"):
        # The fake announces Content-Length: under 2 chunks, the count stops it instead.
        graph.download_media(unannounced, sink, max_bytes=100000)
    assert sink.size <= 100000


def test_no_token_in_logs_or_errors(srv, caplog):
    caplog.set_level(logging.DEBUG)
    item = srv.add_media(CLINIC_WABA, "image/jpeg", data=b"jpeg")
    srv.add_fault(match={"path": "/_media/"}, status=500)
    graph = client(srv)
    with pytest.raises(TransportError) as err:
        fetch(graph, item["id"])
    assert CLINIC_TOKEN not in caplog.text + str(err.value) + repr(graph)


def test_download_without_token_is_refused(srv):
    item = srv.add_media(CLINIC_WABA, "image/jpeg", data=b"jpeg")
    info = client(srv).get_media_url(item["id"])
    with pytest.raises(AuthError):
        GraphClient(None, base_url=srv.url).download_media(info, io.BytesIO(), max_bytes=MB)


# -- signed webhooks carrying media ------------------------------------------------------------

@pytest.mark.parametrize("kind,mime", [
    ("image", "image/jpeg"), ("document", "application/pdf"), ("audio", "audio/ogg"),
    ("video", "video/mp4"), ("sticker", "image/webp")])
def test_signed_media_webhook_points_at_a_downloadable_media(srv, hooks, kind, mime):
    srv.configure(webhook_url=hooks.url)
    result = srv.send_media(CLINIC_PHONE, "5511987651234", kind, mime,
                            data=b"file-" + kind.encode(),
                            caption="Exame" if kind != "audio" else None, filename="exame.pdf")
    assert result["status"] == 200
    event = hooks.events[-1]
    assert verify(event["raw"], event["headers"]["X-Hub-Signature-256"], SECRET)
    msg = json.loads(event["raw"])["entry"][0]["changes"][0]["value"]["messages"][0]
    assert (msg["type"], msg[kind]["mime_type"], msg[kind]["id"]) == (
        kind, mime, result["media"]["id"])
    assert fetch(client(srv), msg[kind]["id"], media_type=kind)[2] == b"file-" + kind.encode()


def test_history_media_follow_up_keeps_the_placeholder_wamid(srv, hooks):
    srv.configure(webhook_url=hooks.url)
    srv.send_history_media(CLINIC_PHONE, "5511987651234", "wamid.PLACEHOLDER", "image",
                           "image/jpeg", data=b"old photo")
    payload = json.loads(hooks.events[-1]["raw"])
    change = payload["entry"][0]["changes"][0]
    assert (change["field"], change["value"]["messages"][0]["id"]) == (
        "history", "wamid.PLACEHOLDER")


def test_control_api_creates_media_and_reset_forgets_it(srv):
    session = requests.Session()
    session.trust_env = False
    item = session.post(srv.url + "/_fake/media", json={
        "waba_id": CLINIC_WABA, "mime_type": "text/plain", "data": "olá"}, timeout=5).json()
    assert fetch(client(srv), item["id"], media_type="document")[2] == "olá".encode()
    srv.reset()
    with pytest.raises(PermanentError):
        client(srv).get_media_url(item["id"])


# -- what is kept -------------------------------------------------------------------------------

def test_meta_limits_per_type():
    assert [size_limit(t) for t in ("image", "audio", "video", "document", "sticker")] == [
        5 * MB, 16 * MB, 16 * MB, 100 * MB, 500 * 1024]
    assert size_limit("text") is None


def test_allowlist_ignores_parameters_and_refuses_the_rest():
    check_allowed("audio", "audio/ogg; codecs=opus", 1000)
    check_allowed("document", "application/pdf", 100 * MB)
    for kind, mime, size, reason in [("document", "application/zip", 10, "refused"),
                                     ("image", "image/gif", 10, "refused"),
                                     ("image", None, 10, "refused"),
                                     ("text", "text/plain", 10, "refused"),
                                     ("image", "image/jpeg", 5 * MB + 1, "too_large")]:
        with pytest.raises(MediaRefused) as err:
            check_allowed(kind, mime, size)
        assert err.value.reason == reason


def test_file_names_are_safe_and_typed():
    assert file_name("77", "application/pdf", filename="exame.pdf") == "exame.pdf"
    assert file_name("77", "image/jpeg", caption="Raio-X / joelho") == "Raio-X joelho.jpg"
    assert file_name("77", "audio/ogg; codecs=opus") == "whatsapp-77.ogg"
    assert "/" not in file_name("77", "text/plain", filename="../../etc/passwd")


def test_media_url_answer_without_url_is_permanent(srv):
    graph = client(srv)
    graph._send = lambda *a, **k: (200, {}, b'{"id": "1"}')
    with pytest.raises(PermanentError):
        graph.get_media_url("1")
