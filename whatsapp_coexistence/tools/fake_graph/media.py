"""Media of the fake Graph server: stored files, expiring signed download links.

Meta answers ``GET /<MEDIA_ID>`` with a URL valid for 5 minutes, downloaded with the business
token (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media). A file is
either given as bytes, or as a size whose bytes are generated on the fly (a 50 MB document
then costs no memory in the fake), always the same bytes for the same id.
"""

import hashlib
import hmac
import secrets
import threading
import time

from .wire import digits, envelope, new_wamid, phone_metadata

#: Path prefix of download links (not under ``/v25.0``: Meta serves them from another host).
MEDIA_PATH = "/_media/"
CHUNK = 64 * 1024


def _pattern(media_id):
    """One chunk of bytes, different per media id."""
    seed = hashlib.sha256(media_id.encode()).digest()
    return (seed * (CHUNK // len(seed) + 1))[:CHUNK]


class MediaStore:
    """Media known to the fake, per WABA, with HMAC-signed expiring download links."""

    def __init__(self):
        self.lock = threading.RLock()
        self._key = secrets.token_bytes(32)
        self._items = {}

    def reset(self):
        """Forget every media."""
        with self.lock:
            self._items = {}

    def add(self, waba_id, mime_type, data=None, size=None, media_id=None, sha256=None):
        """Store a media of ``waba_id``; return its record.

        :param bytes data: the file; or ``size`` to generate that many bytes
        :param str sha256: announce this digest instead of the real one (a corrupt file)
        :rtype: dict
        """
        if data is None and size is None:
            raise ValueError('give "data" or "size"')
        with self.lock:
            media_id = str(media_id or 10**15 + secrets.randbelow(9 * 10**15))
            item = {"id": media_id, "waba_id": str(waba_id), "mime_type": mime_type,
                    "data": data, "size": len(data) if data is not None else int(size)}
            item["sha256"] = sha256 or self._digest(item)
            self._items[media_id] = item
            return dict(item, data=None)

    def get(self, media_id):
        """The record of ``media_id`` or ``None``."""
        with self.lock:
            return self._items.get(str(media_id))

    def remove(self, media_id):
        """Forget one media: Meta deletes media after 30 days (its id then is unknown)."""
        with self.lock:
            return self._items.pop(str(media_id), None) is not None

    def chunks(self, item, limit=None):
        """Yield the bytes of ``item`` in chunks; stop after ``limit`` bytes if given."""
        remaining = item["size"] if limit is None else min(limit, item["size"])
        if item["data"] is not None:
            data = item["data"][:remaining]
            for start in range(0, len(data), CHUNK):
                yield data[start:start + CHUNK]
            return
        block = _pattern(item["id"])
        while remaining > 0:
            piece = block[:min(CHUNK, remaining)]
            remaining -= len(piece)
            yield piece

    def _digest(self, item):
        digest = hashlib.sha256()
        for chunk in self.chunks(item):
            digest.update(chunk)
        return digest.hexdigest()

    # -- links -----------------------------------------------------------------------------

    def link(self, base_url, media_id, ttl):
        """A download URL for ``media_id`` that expires ``ttl`` seconds from now."""
        expires = int(time.time() + float(ttl))
        signature = self._sign(media_id, expires)
        return f"{base_url}{MEDIA_PATH}{media_id}?ext={expires}&hash={signature}"

    def check_link(self, media_id, query):
        """``None`` when the link is valid, else why not (``"expired"`` or ``"bad signature"``)."""
        try:
            expires = int(query.get("ext") or 0)
        except ValueError:
            return "bad signature"
        if not hmac.compare_digest(self._sign(media_id, expires), query.get("hash") or ""):
            return "bad signature"
        if expires <= time.time():
            return "expired"
        return None

    def _sign(self, media_id, expires):
        return hmac.new(self._key, f"{media_id}:{expires}".encode(), hashlib.sha256).hexdigest()


def media_message_webhook(phone, sender, media_type, item, caption=None, filename=None,
                          name=None, field="messages"):
    """Build an inbound media message webhook (§2.1) carrying ``item``'s id, type and digest.

    With ``field="history"`` and the placeholder's ``wamid`` in ``name``'s place, see
    :func:`history_media_webhook`.

    :return: ``(wamid, payload)``
    """
    sender = digits(sender)
    wamid = new_wamid(sender)
    msg = {"from": sender, "id": wamid, "timestamp": str(int(time.time())), "type": media_type,
           media_type: _media_object(media_type, item, caption, filename)}
    value = {"messaging_product": "whatsapp", "metadata": phone_metadata(phone),
             "contacts": [{"profile": {"name": name or sender}, "wa_id": sender}],
             "messages": [msg]}
    return wamid, envelope(phone["waba_id"], field, value)


def history_media_webhook(phone, sender, wamid, media_type, item, caption=None, filename=None):
    """Build the ``history`` follow-up that gives a ``media_placeholder`` its media (§2.3).

    :rtype: dict
    """
    msg = {"from": digits(sender), "id": wamid, "timestamp": str(int(time.time())),
           "type": media_type, media_type: _media_object(media_type, item, caption, filename)}
    value = {"messaging_product": "whatsapp", "metadata": phone_metadata(phone),
             "messages": [msg]}
    return envelope(phone["waba_id"], "history", value)


def _media_object(media_type, item, caption, filename):
    obj = {"mime_type": item["mime_type"], "sha256": item["sha256"], "id": item["id"]}
    if caption and media_type in ("image", "video", "document"):
        obj["caption"] = caption
    if media_type == "document":
        obj["filename"] = filename or f"{item['id']}.pdf"
    if media_type == "sticker":
        obj["animated"] = False
    if media_type == "audio":
        obj["voice"] = item["mime_type"].startswith("audio/ogg")
    return obj
