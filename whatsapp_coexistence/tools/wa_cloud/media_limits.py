"""Meta's media rules: which MIME types each media kind accepts, and how large a file may be.

Pure Python, shared by outbound uploads (checked before the request) and anything that receives
media. Source: "Supported media types" of the Cloud API media reference,
https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#supported-media-types
(audio/ogg only with the OPUS codec; video only H.264 with AAC audio, which a MIME type cannot
tell, so Meta is the judge of those).
"""

from dataclasses import dataclass

MB = 1024 * 1024

#: Longest caption of an image, video or document message (Meta: 1,024 characters).
CAPTION_LIMIT = 1024


@dataclass(frozen=True)
class MediaKind:
    """One media kind of a message.

    :ivar name: the message ``type`` (``image``, ``audio``, ``video``, ``document``, ``sticker``)
    :ivar max_bytes: Meta's size limit for this kind
    :ivar mime_types: the MIME types Meta accepts for it
    :ivar caption: whether a message of this kind may carry a caption
    :ivar filename: whether a message of this kind may carry a file name
    """

    name: str
    max_bytes: int
    mime_types: tuple
    caption: bool = False
    filename: bool = False


KINDS = {
    kind.name: kind
    for kind in (
        MediaKind("image", 5 * MB, ("image/jpeg", "image/png"), caption=True),
        MediaKind("audio", 16 * MB, ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4",
                                     "audio/ogg")),
        MediaKind("video", 16 * MB, ("video/mp4", "video/3gpp"), caption=True),
        MediaKind("document", 100 * MB, (
            "text/plain",
            "application/pdf",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.ms-excel",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ), caption=True, filename=True),
        # The larger of the two sticker limits: what a sticker of unknown kind may reach
        # (max_bytes() applies the static one when the webhook says "animated": false).
        MediaKind("sticker", 500 * 1024, ("image/webp",)),
    )
}
#: Meta's limit for a static sticker; an animated one may reach ``KINDS["sticker"].max_bytes``
#: (500 KB). Source: the "Sticker" rows of the supported media types table (URL above).
STATIC_STICKER_BYTES = 100 * 1024
#: Kinds Odoo sends (stickers are received only).
OUTBOUND_KINDS = ("image", "document", "audio", "video")


class MediaRejected(ValueError):
    """A file Meta would refuse, found before any request.

    :ivar reason: ``"type"`` (MIME type not accepted), ``"size"`` (over the kind's limit),
        ``"empty"`` (no bytes) or ``"kind"`` (the type does not fit the requested kind)
    :ivar mime_type: the normalised MIME type of the file
    :ivar size: the file's size in bytes
    :ivar kind: the :class:`MediaKind` concerned, when one is known
    """

    def __init__(self, reason, mime_type, size, kind=None):
        self.reason = reason
        self.mime_type = mime_type
        self.size = size
        self.kind = kind
        limit = f", limit {kind.max_bytes} bytes for {kind.name}" if kind else ""
        super().__init__(f"media refused ({reason}): {mime_type or 'no type'}, {size} bytes"
                         f"{limit}")


#: Other spellings of an accepted type. Meta's table says "video/3gp" but its upload endpoint
#: only takes "video/3gpp" (the list in its code-100 refusal).
_ALIASES = {"video/3gp": "video/3gpp"}


def normalize_mime(mime_type):
    """``"Audio/OGG; codecs=opus"`` → ``"audio/ogg"``: lower case, parameters dropped, the
    spelling Meta's upload accepts.

    :rtype: str
    """
    mime = str(mime_type or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(mime, mime)


def max_bytes(kind, animated=None):
    """Meta's size limit for a file of ``kind``, in bytes, or ``None`` for a kind without media.

    A sticker has two limits: 100 KB static, 500 KB animated. Inbound sticker webhooks say
    which (``"animated": true|false``); when the payload does not (an echo or a history item
    may lack it), the larger bound applies: refusing an animated sticker as too large would
    lose a file Meta itself delivered, while keeping a static one of up to 500 KB only costs
    storage.

    :param str kind: the message ``type``
    :param animated: ``True``/``False`` as the webhook said, ``None`` when unknown
    :rtype: int | None
    """
    if kind == "sticker" and animated is False:
        return STATIC_STICKER_BYTES
    found = KINDS.get(kind)
    return found.max_bytes if found else None


def kind_of(mime_type, kinds=OUTBOUND_KINDS):
    """The media kind a MIME type belongs to, among ``kinds``, or ``None``.

    :rtype: MediaKind | None
    """
    mime = normalize_mime(mime_type)
    return next((KINDS[name] for name in kinds if mime in KINDS[name].mime_types), None)


def check_media(mime_type, size, kind=None, kinds=OUTBOUND_KINDS):
    """Check a file against Meta's rules before uploading it.

    :param str mime_type: the file's MIME type
    :param int size: its size in bytes
    :param str kind: the kind the caller wants (e.g. ``"image"`` for an image header); by
        default the kind follows from the MIME type
    :param kinds: the kinds allowed at all
    :returns: the kind the file will be sent as
    :rtype: MediaKind
    :raises MediaRejected: with the reason, before anything reaches Meta
    """
    mime = normalize_mime(mime_type)
    found = kind_of(mime, kinds)
    wanted = KINDS.get(kind) if kind else found
    if found is None:
        raise MediaRejected("type", mime, size, wanted)
    if wanted is not found:
        raise MediaRejected("kind", mime, size, wanted)
    if not size or size <= 0:
        raise MediaRejected("empty", mime, size or 0, found)
    if size > found.max_bytes:
        raise MediaRejected("size", mime, size, found)
    return found
