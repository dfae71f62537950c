"""Inbound media retrieval: what is kept (Meta's limits of :mod:`.media_limits`), what the
download answers, and the name of the file kept.

Pure Python: the Odoo job and the pytest suite both use it.
"""

import mimetypes
import re
from dataclasses import dataclass

from .errors import PermanentError
from .media_limits import KINDS, MB, max_bytes, normalize_mime  # noqa: F401  (MB: re-exported)

#: Largest file kept per message type (a sticker's larger bound: see :func:`size_limit`), and
#: the MIME types kept: Meta's own rules, the same for sending and receiving (one home:
#: ``media_limits``).
SIZE_LIMITS = {name: kind.max_bytes for name, kind in KINDS.items()}
MIME_ALLOWLIST = {name: kind.mime_types for name, kind in KINDS.items()}
MEDIA_TYPES = tuple(KINDS)

# Extensions mimetypes does not know or guesses oddly.
_EXTENSIONS = {"audio/ogg": ".ogg", "audio/amr": ".amr", "audio/aac": ".aac", "audio/mp4": ".m4a",
               "video/3gpp": ".3gp", "image/jpeg": ".jpg", "text/plain": ".txt"}
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
    """``"audio/ogg; codecs=opus"`` -> ``"audio/ogg"`` (``normalize_mime``); ``None`` when
    there is no type."""
    return normalize_mime(mime_type) or None


def size_limit(media_type, animated=None):
    """Largest size in bytes kept for ``media_type``, or ``None`` for a non-media type.

    :param animated: for a sticker, the webhook's ``animated`` flag (``None``: not said);
        see :func:`.media_limits.max_bytes`
    """
    return max_bytes(media_type, animated)


def check_allowed(media_type, mime_type, file_size=None, animated=None):
    """Refuse media Meta does not support for this type, or that exceeds its size limit.

    :param str media_type: ``image``, ``audio``, ``video``, ``document`` or ``sticker``
    :param str mime_type: announced MIME type (parameters ignored)
    :param int file_size: announced size, if known
    :param animated: for a sticker, whether the webhook said it is animated (``None``: not
        said, the larger limit applies)
    :raises MediaRefused: with ``reason`` ``"refused"`` or ``"too_large"``
    """
    if media_type not in SIZE_LIMITS:
        raise MediaRefused(f"{media_type!r} messages carry no media", reason="refused")
    mime = base_mime(mime_type)
    if mime not in MIME_ALLOWLIST[media_type]:
        raise MediaRefused(f"{mime or 'an unknown type'} is not accepted for {media_type} "
                           f"messages", reason="refused")
    limit = size_limit(media_type, animated)
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
