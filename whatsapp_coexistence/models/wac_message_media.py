"""Inbound media kept: a job per media message downloads it into an ``ir.attachment``.

Meta sends only a media id; the file must be fetched (``GET /<MEDIA_ID>``, then the URL with
the token) before Meta forgets it. The job runs on its own channel (``root.whatsapp.media``),
after the message is stored, so that downloads never hold a webhook nor the send channel.
"""

import logging

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.queue_job.exception import RetryableJobError

from ..const import CHANNEL_MEDIA
from ..tools.wa_cloud import media as wa_media
from ..tools.wa_cloud.errors import PermanentError, RetryableError, WaCloudError

_logger = logging.getLogger(__name__)

MEDIA_STATES = [
    ("none", "No media"),
    ("pending", "Download pending"),
    ("downloaded", "Kept"),
    ("failed", "Download failed"),
    ("expired", "Expired at Meta"),
    ("too_large", "Too large"),
    ("refused", "Type not accepted"),
]
#: Meta's answer to an id it does not know (anymore): ``(#100) ... does not exist``; 131052 is
#: "Media download error" (the customer's media could not be fetched by Meta).
GONE_CODES = (100, 131052)
#: Seconds before the n-th retry of a transient failure (then the last value).
RETRY_DELAYS = (10, 60, 300, 900)
#: Tries of a download job: with RETRY_DELAYS, about an hour and a half of Meta or network
#: trouble before the media is marked failed (Meta keeps a webhook's media id for 7 days:
#: https://developers.facebook.com/documentation/business-messaging/whatsapp/business-phone-numbers/media/).
MAX_TRIES = 8
#: queue_job runs the lowest number first (default 10). The media channel shares
#: ``root.whatsapp``'s slots with webhook ingest and sends: when a slot frees, any of those
#: waiting goes before a download, so a burst of media never delays a webhook by more than
#: the download that holds the slot.
MEDIA_PRIORITY = 20


class WacMessage(models.Model):
    _inherit = "wac.message"  # pylint: disable=consider-merging-classes-inherited

    media_state = fields.Selection(MEDIA_STATES, readonly=True, index=True, copy=False,
                                   help="Whether the file of a media message is kept in Odoo.")
    media_reason = fields.Char("Media problem", readonly=True, copy=False,
                               help="Why the media is not kept, in words a person can act on.")
    media_attachment_id = fields.Many2one("ir.attachment", "Media file", readonly=True,
                                          copy=False, index="btree_not_null")
    media_filename = fields.Char(readonly=True, copy=False)
    media_sha256 = fields.Char(readonly=True, copy=False)
    sticker_kind = fields.Selection(
        [("static", "Static"), ("animated", "Animated")], readonly=True, copy=False,
        help="What the webhook said of a sticker; Meta's size limit differs (100 KB static, "
        "500 KB animated). Empty: not said, the larger limit applies.")

    # ------------------------------------------------------------
    # INGEST HOOKS: every message that carries a media id gets a job
    # ------------------------------------------------------------

    @api.model
    def _wac_ingest_inbound(self, account, inbound):
        messages = super()._wac_ingest_inbound(account, inbound)
        messages._wac_media_track({m.wamid: m.media for m in inbound if m.media})
        return messages

    @api.model
    def _wac_ingest_echoes(self, account, echoes):
        messages = super()._wac_ingest_echoes(account, echoes)
        messages._wac_media_track({e.wamid: e.media for e in echoes if e.media})
        return messages

    @api.model
    def _wac_upgrade_placeholders(self, account, media_messages):
        result = super()._wac_upgrade_placeholders(account, media_messages)
        by_wamid = {m.wamid: m.media for m in media_messages if m.wamid and m.media}
        self.search([("company_id", "=", account.company_id.id),
                     ("wamid", "in", list(by_wamid))])._wac_media_track(by_wamid)
        return result

    def _wac_media_track(self, media_by_wamid):
        """Mark these messages' media pending and enqueue their download.

        A message whose media id did not change and is kept (or settled) is left alone, so a
        duplicate webhook never downloads twice.

        :param dict media_by_wamid: ``{wamid: media descriptor}`` from the webhook
        """
        for message in self:
            media = media_by_wamid.get(message.wamid) or {}
            if not media.get("id") or message.message_type not in wa_media.MEDIA_TYPES:
                continue
            if message.media_state not in (False, "none") and \
                    message.media_sha256 == media.get("sha256") and message.media_id == media["id"]:
                continue
            animated = media.get("animated")
            message.write({"media_state": "pending", "media_reason": False,
                           "media_filename": media.get("filename"),
                           "media_sha256": media.get("sha256"),
                           "sticker_kind": {True: "animated", False: "static"}.get(animated)
                           or False})
            message._wac_media_enqueue()

    def _wac_media_enqueue(self):
        self.ensure_one()
        self.with_delay(
            channel=CHANNEL_MEDIA, max_retries=MAX_TRIES, priority=MEDIA_PRIORITY,
            identity_key="wac-media-%d-%s" % (self.id, self.media_id),
            description="WhatsApp media %s of message %d" % (self.media_id, self.id),
        )._wac_job_download_media(self.media_id)

    def action_wac_media_retry(self):
        """Download again (a person fixed the token, or Meta was down for too long)."""
        if not self.env.user.has_group("whatsapp_coexistence.whatsapp_coexistence_group_manager"):
            raise UserError(self.env._("Only WhatsApp managers can download a media again."))
        self.check_access("read")
        for message in self.filtered(lambda m: m.media_id and m.media_state == "failed"):
            message.sudo().write({"media_state": "pending", "media_reason": False})
            message.sudo()._wac_media_enqueue()
        return True

    # ------------------------------------------------------------
    # JOB
    # ------------------------------------------------------------

    def _wac_job_download_media(self, media_id):
        """queue_job entry point: keep the media ``media_id`` of this message.

        Ends in a recorded state: ``downloaded``, ``too_large``/``refused`` (not kept),
        ``expired`` (Meta forgot the id), or ``failed`` (with Meta's or the network's words);
        a transient failure is retried with backoff until the job's last try. While webhook
        work waits, the download is postponed first (``wac_message_media_yield.py``).
        """
        self.ensure_one()
        message = self.sudo()
        if message.media_id != media_id or message.media_state != "pending":
            return "Nothing to do: media %s is %s" % (media_id, message.media_state)
        message._wac_media_yield_to_ingest()  # webhook ingest goes first, for a while
        try:
            attachment = message._wac_media_download()
        except wa_media.MediaRefused as error:
            return message._wac_media_settle(error.reason, message._wac_media_refusal(error))
        except RetryableError as error:
            return message._wac_media_retry_or_fail(error)
        except PermanentError as error:
            if error.code in GONE_CODES:
                return message._wac_media_settle("expired", self.env._(
                    "Meta no longer has this media (expired or unknown id): %(error)s",
                    error=error.message))
            return message._wac_media_settle("failed", self.env._(
                "Download refused by Meta: %(error)s", error=error.message))
        except (WaCloudError, UserError) as error:  # the token: a person must act, then retry
            return message._wac_media_settle("failed", self.env._(
                "Download impossible until the account's access token is fixed: %(error)s",
                error=getattr(error, "message", None) or str(error)))
        message.write({"media_state": "downloaded", "media_reason": False,
                       "media_attachment_id": attachment.id})
        return "Kept %s (%d bytes)" % (attachment.name, attachment.file_size)

    def _wac_media_download(self):
        """Fetch the URL, check type and size, stream the file into an attachment."""
        client = self.account_id._wac_client()
        limit = self._wac_media_limit()
        wa_media.check_allowed(self.message_type, self.media_mime_type)
        info = client.get_media_url(self.media_id)
        wa_media.check_allowed(self.message_type, info.mime_type or self.media_mime_type,
                               info.file_size, animated=self._wac_sticker_animated())
        mimetype = wa_media.base_mime(info.mime_type or self.media_mime_type)
        vals = {
            "name": wa_media.file_name(self.media_id, mimetype, self.media_filename, self.body),
            "res_model": self._name, "res_id": self.id, "company_id": self.company_id.id,
            "mimetype": mimetype, "type": "binary",
        }
        attachment, _download = self.env["ir.attachment"].sudo()._wac_create_streamed(
            vals, lambda sink: client.download_media(
                info, sink, max_bytes=limit, media_type=self.message_type))
        return attachment

    def _wac_sticker_animated(self):
        """``True``/``False`` as the webhook said of this sticker, ``None`` when not said."""
        return {"animated": True, "static": False}.get(self.sticker_kind)

    def _wac_media_limit(self):
        """Meta's size limit for this message's file, in bytes."""
        return wa_media.size_limit(self.message_type, self._wac_sticker_animated())

    def _wac_media_refusal(self, error):
        if error.reason == "too_large" and self.message_type == "sticker":
            return self._wac_sticker_refusal(error)
        if error.reason == "too_large":
            return self.env._(
                "Not kept: the file is larger than Meta's limit for %(type)s messages "
                "(%(limit)s MB). %(details)s",
                type=self.message_type, limit=round(wa_media.size_limit(self.message_type)
                                                    / wa_media.MB, 1), details=error.message)
        return self.env._(
            "Not kept: this file type is not accepted for %(type)s messages. %(details)s",
            type=self.message_type, details=error.message)

    def _wac_sticker_refusal(self, error):
        """Why a sticker over its limit is not kept, with the limit of its kind."""
        limit = round(self._wac_media_limit() / 1024)
        if self.sticker_kind == "static":
            return self.env._(
                "Not kept: this static sticker is larger than Meta's limit for static stickers "
                "(%(limit)s KB). %(details)s", limit=limit, details=error.message)
        return self.env._(
            "Not kept: this sticker is larger than Meta's limit for animated stickers "
            "(%(limit)s KB). %(details)s", limit=limit, details=error.message)

    def _wac_media_retry_or_fail(self, error):
        tries, max_tries = self.env["wac.webhook.event"]._wac_job_tries()
        if max_tries and tries + 1 >= max_tries:
            return self._wac_media_settle("failed", self.env._(
                "Download failed after %(tries)s tries: %(error)s",
                tries=tries + 1, error=error.message))
        delay = RETRY_DELAYS[min(tries, len(RETRY_DELAYS) - 1)]
        raise RetryableJobError("Media download: %s" % error.message, seconds=delay)

    def _wac_media_settle(self, state, reason):
        self.write({"media_state": state, "media_reason": reason})
        _logger.info("WhatsApp media of message %d: %s (%s)", self.id, state, reason)
        return reason
