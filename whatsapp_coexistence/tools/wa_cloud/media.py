"""What inbound media may be kept: Meta's per-type size limits and MIME types, file names.

Meta's table of supported media (the same for sending and receiving):
https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#supported-media-types
Pure Python: the Odoo job and the pytest suite both use it.
"""

import mimetypes
import re
from dataclasses import dataclass

from .errors import PermanentError

KB = 1024
MB = 1024 * KB

#: Largest file Meta carries per message type. A sticker is 100 KB static, 500 KB animated; the
#: webhook does not say which reliably, so the animated ceiling applies.
SIZE_LIMITS = {
    "image": 5 * MB,
    "audio": 16 * MB,
    "video": 16 * MB,
    "document": 100 * MB,
    "sticker": 500 * KB,
}

#: MIME types Meta supports, per message type (parameters such as ``; codecs=opus`` are
#: ignored). Anything else is refused and never written to the filestore.
MIME_ALLOWLIST = {
    "image": ("image/jpeg", "image/png"),
    "sticker": ("image/webp",),
    "audio": ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"),
    "video": ("video/3gp", "video/3gpp", "video/mp4"),
    "document": (
        "text/plain",
        "application/pdf",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
}
MEDIA_TYPES = tuple(SIZE_LIMITS)

# Extensions mimetypes does not know or guesses oddly.
_EXTENSIONS = {"audio/ogg": ".ogg", "audio/amr": ".amr", "audio/aac": ".aac", "audio/mp4": ".m4a",
               "video/3gp": ".3gp", "image/jpeg": ".jpg", "text/plain": ".txt"}
_UNSAFE_NAME = re.compile(r"[\x00-\x1f/\\:*?\"<>|]+")


class MediaRefused(PermanentError):
    """The media is of a type or size this installation does not keep (never retried).

    :ivar reason: ``"too_large"`` or ``"refused"`` (a MIME type outside the allowlist)
    """

    def __init__(self, message, *, reason, **kwargs):
        self.reason = reason
        super().__init__(message, **kwargs)


@dataclass(frozen=True)
class MediaInfo:
    """What ``GET /<MEDIA_ID>`` answers.

    :ivar media_id: the id asked for
    :ivar url: download URL; it expires after 5 minutes and needs the access token
    :ivar mime_type: e.g. ``image/jpeg``
    :ivar sha256: hex digest of the file, or ``None``
    :ivar file_size: bytes, or ``None`` when Meta did not say
    """

    media_id: str
    url: str
    mime_type: str | None
    sha256: str | None
    file_size: int | None


@dataclass(frozen=True)
class MediaDownload:
    """Outcome of a streamed download: what was written to the sink.

    :ivar size: bytes written
    :ivar sha256: hex digest of the bytes written
    :ivar mime_type: the type Meta announced (``Content-Type`` if the metadata had none)
    """

    size: int
    sha256: str
    mime_type: str | None


def base_mime(mime_type):
    """``"audio/ogg; codecs=opus"`` -> ``"audio/ogg"`` (lower case), ``None`` stays ``None``."""
    if not mime_type:
        return None
    return mime_type.split(";", 1)[0].strip().lower() or None


def size_limit(media_type):
    """Largest size in bytes kept for ``media_type``, or ``None`` for a non-media type."""
    return SIZE_LIMITS.get(media_type)


def check_allowed(media_type, mime_type, file_size=None):
    """Refuse media Meta does not support for this type, or that exceeds its size limit.

    :param str media_type: ``image``, ``audio``, ``video``, ``document`` or ``sticker``
    :param str mime_type: announced MIME type (parameters ignored)
    :param int file_size: announced size, if known
    :raises MediaRefused: with ``reason`` ``"refused"`` or ``"too_large"``
    """
    if media_type not in SIZE_LIMITS:
        raise MediaRefused(f"{media_type!r} messages carry no media", reason="refused")
    mime = base_mime(mime_type)
    if mime not in MIME_ALLOWLIST[media_type]:
        raise MediaRefused(f"{mime or 'an unknown type'} is not accepted for {media_type} "
                           f"messages", reason="refused")
    limit = SIZE_LIMITS[media_type]
    if file_size is not None and file_size > limit:
        raise MediaRefused(too_large_text(media_type, file_size, limit), reason="too_large")


def too_large_text(media_type, size, limit):
    """Sentence for a file over its type's limit (``size`` may be a lower bound)."""
    return f"{media_type} of {size} bytes exceeds the limit of {limit} bytes"


def extension_for(mime_type):
    """File extension (with the dot) for a MIME type, ``""`` when unknown."""
    mime = base_mime(mime_type)
    if not mime:
        return ""
    return _EXTENSIONS.get(mime) or mimetypes.guess_extension(mime) or ""


def file_name(media_id, mime_type, filename=None, caption=None):
    """A safe attachment name: the sender's file name, else the caption, else the media id;
    with the type's extension when the name has none.

    :rtype: str
    """
    name = " ".join(_UNSAFE_NAME.sub(" ", filename or caption or "").split())[:120]
    name = name.strip(". ") or f"whatsapp-{media_id}"
    ext = extension_for(mime_type)
    if ext and not name.lower().endswith(ext):
        name += ext
    return name
