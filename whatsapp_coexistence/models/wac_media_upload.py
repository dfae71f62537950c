from datetime import timedelta

from odoo import api, fields, models

#: Meta keeps an uploaded file 30 days
#: (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#upload-media);
#: an id is reused one day less, so that a message queued now still finds its file.
MEDIA_ID_REUSE_DAYS = 29


class WacMediaUpload(models.Model):
    """A file uploaded to Meta for one number, and the media id Meta gave it.

    Sending the same file again (the same template header for every appointment, a document
    sent to many customers) reuses the id while Meta still keeps the file, instead of
    uploading it once per message.
    """

    _name = "wac.media.upload"
    _description = "WhatsApp media uploaded to Meta"
    _order = "uploaded_at desc, id desc"
    _check_company_auto = True

    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    account_id = fields.Many2one("wac.account", required=True, ondelete="cascade",
                                 readonly=True, check_company=True)
    phone_number_id = fields.Char(required=True, readonly=True,
                                  help="The number the file was uploaded for.")
    checksum = fields.Char(required=True, index=True, readonly=True,
                           help="Checksum of the file (the attachment's).")
    mime_type = fields.Char(required=True, readonly=True)
    kind = fields.Char(readonly=True, help="image, document, audio or video")
    file_name = fields.Char(readonly=True)
    file_size = fields.Integer(readonly=True)
    media_id = fields.Char("Meta media ID", required=True, readonly=True)
    uploaded_at = fields.Datetime(required=True, readonly=True, default=fields.Datetime.now)

    @api.model
    def _wac_reusable(self, account, attachment):
        """The upload of the same file for the account's current number that Meta still
        keeps, or an empty recordset."""
        horizon = fields.Datetime.now() - timedelta(days=MEDIA_ID_REUSE_DAYS)
        return self.search([
            ("account_id", "=", account.id), ("phone_number_id", "=", account.phone_number_id),
            ("checksum", "=", attachment.checksum), ("mime_type", "=", attachment.mimetype),
            ("uploaded_at", ">", horizon)], limit=1)
