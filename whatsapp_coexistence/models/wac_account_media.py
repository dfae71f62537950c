"""Outbound media of an account: files uploaded to Meta, then sent by their media id."""

import contextlib
import io
from dataclasses import dataclass

from odoo import models
from odoo.exceptions import UserError

from ..tools.wa_cloud.client import GraphClient
from ..tools.wa_cloud.media_limits import CAPTION_LIMIT, MB, MediaRejected, check_media


@dataclass(frozen=True)
class MediaMessage:
    """An image, document, audio or video message ready to send.

    :ivar payload: the JSON body of ``POST /<PHONE_NUMBER_ID>/messages``
    :ivar vals: what its ``wac.message`` row records (type, media id and type, caption)
    """

    payload: dict
    vals: dict


class WacAccount(models.Model):
    _inherit = "wac.account"  # pylint: disable=consider-merging-classes-inherited

    def _wac_upload_media(self, attachment, kind=None, filename=None):
        """Upload ``attachment`` to Meta for this account's number; return its media id.

        The file is checked against Meta's types and size limits first: a file Meta would
        refuse raises a :class:`UserError` that says what to send instead, and nothing goes to
        Meta. The same file (checksum and type) uploaded to this number less than
        :data:`~.wac_media_upload.MEDIA_ID_REUSE_DAYS` days ago is not uploaded again: its id
        is reused.

        :param attachment: one ``ir.attachment`` (read with the caller's rights)
        :param str kind: the kind the file must be (``"image"`` for an image header); by
            default the kind follows from its MIME type
        :param str filename: the name to upload it under (default: the attachment's)
        :raises UserError: the file is of a type or size Meta refuses
        :raises WaCloudError: Meta's answer to the upload, untouched: a job retries a
            retryable one, a user action shows :meth:`_wac_error_advice`
        :returns: the media id
        :rtype: str
        """
        self.ensure_one()
        attachment.ensure_one()
        found = self._wac_check_media(attachment, kind, filename)
        Upload = self.env["wac.media.upload"].sudo()
        reusable = Upload._wac_reusable(self, attachment)
        if reusable:
            return reusable.media_id
        client = self._wac_client()
        with self._wac_open_attachment(attachment) as stream:
            media_id = client.upload_media(self.phone_number_id, stream, attachment.mimetype,
                                           filename or attachment.name)
        Upload.create({
            "company_id": self.company_id.id, "account_id": self.id,
            "phone_number_id": self.phone_number_id, "checksum": attachment.checksum,
            "mime_type": attachment.mimetype, "kind": found.name,
            "file_name": filename or attachment.name, "file_size": attachment.file_size,
            "media_id": media_id,
        })
        return media_id

    def _wac_media_message(self, attachment, to, caption=None, context_wamid=None,
                           biz_opaque_callback_data=None):
        """Upload ``attachment`` (see :meth:`_wac_upload_media`) and build its message.

        The kind follows the file's type: a JPEG or PNG goes as an image, a PDF as a
        document... A caption goes with images, videos and documents (Meta shows none on
        audio); a document keeps its file name.

        :param str to: the recipient (``wa_id`` or digits)
        :param str caption: text under the media, recorded as the message's body
        :param str context_wamid: the message this one answers
        :rtype: MediaMessage
        """
        self.ensure_one()
        media_id = self._wac_upload_media(attachment)
        kind = check_media(attachment.mimetype, attachment.file_size)
        caption = (caption or "").strip() or None
        try:
            payload = GraphClient.build_media_payload(
                to, kind.name, media_id, caption=caption, filename=attachment.name,
                biz_opaque_callback_data=biz_opaque_callback_data, context_wamid=context_wamid)
        except ValueError:
            raise UserError(self.env._(
                "The caption is too long: WhatsApp shows at most %(limit)s characters under "
                "a file. Shorten it or send the rest as a text message.", limit=CAPTION_LIMIT)
            ) from None
        vals = {"message_type": kind.name, "media_id": media_id,
                "media_mime_type": attachment.mimetype,
                "body": caption if kind.caption else False}
        return MediaMessage(payload, vals)

    def _wac_check_media(self, attachment, kind=None, filename=None):
        """The media kind ``attachment`` is sent as, or a :class:`UserError` saying why Meta
        would refuse it and what to send instead (naming the file ``filename``, by default
        the attachment's name)."""
        try:
            return check_media(attachment.mimetype, attachment.file_size, kind=kind)
        except MediaRejected as refusal:
            raise UserError(self._wac_media_refusal(filename or attachment.name, refusal)
                            ) from None

    def _wac_media_refusal(self, name, refusal):
        _ = self.env._
        kind = refusal.kind
        if refusal.reason == "size":
            return _("%(file)s is %(size)s MB, over WhatsApp's limit of %(limit)s MB for "
                     "%(kind)s files. Compress it or send a smaller file.",
                     file=name, size=round(refusal.size / MB, 1),
                     limit=kind.max_bytes // MB, kind=self._wac_media_kind_label(kind.name))
        if refusal.reason == "empty":
            return _("%(file)s is empty: attach the file again.", file=name)
        if refusal.reason == "kind":
            return _("%(file)s is not %(kind)s file: choose a file of type %(types)s.",
                     file=name, kind=self._wac_media_kind_label(kind.name, article=True),
                     types=", ".join(kind.mime_types))
        return _("WhatsApp does not accept %(file)s (%(type)s). Send a JPEG or PNG image, an "
                 "MP4 or 3GPP video, an AAC, AMR, MP3, M4A or OGG (Opus) audio, or a PDF, Word, "
                 "Excel, PowerPoint or text document.",
                 file=name, type=refusal.mime_type or _("unknown type"))

    def _wac_media_kind_label(self, kind, article=False):
        _ = self.env._
        if article:
            return {"image": _("an image"), "video": _("a video"), "audio": _("an audio"),
                    "document": _("a document")}.get(kind, kind)
        return {"image": _("image"), "video": _("video"), "audio": _("audio"),
                "document": _("document")}.get(kind, kind)

    @contextlib.contextmanager
    def _wac_open_attachment(self, attachment):
        """A binary file object on the attachment's content: the filestore file itself,
        streamed to Meta rather than loaded whole."""
        if attachment.store_fname:
            with open(attachment._full_path(attachment.store_fname), "rb") as stream:
                yield stream
        else:
            yield io.BytesIO(attachment.raw or b"")
