"""Templates with an image, document or video header, and URL buttons with a variable.

The header's file is chosen on the mapping (``header_file``) and uploaded to Meta at the send;
its media id is reused while Meta keeps the file (``wac.account._wac_upload_media``), so the
same header is uploaded about once a month, not once per appointment. A dry run uploads it too
(no message goes out): that is how it checks that Meta accepts the file.

A URL button's variable is a parameter line like the others (component ``button``, named by the
button's index), filled from the appointment (its reference) or a fixed text, and cleaned into
one valid URL part (``template_params.url_suffix``).
"""

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools.wa_cloud import template_params as tp


class WacTemplateMapping(models.Model):
    _inherit = "wac.template.mapping"

    header_media = fields.Char(
        compute="_compute_header_media",
        help="image, document or video when the template's header is a file.")
    header_file = fields.Binary(
        attachment=True, copy=False,
        help="The file shown in the template's header: a JPEG or PNG image (5 MB at most), a "
             "PDF or Office document (100 MB) or an MP4 video (16 MB), as the template wants.")
    header_filename = fields.Char(copy=False,
                                  help="The name the customer sees on a document header.")

    @api.depends("template_id.components")
    def _compute_header_media(self):
        for mapping in self:
            mapping.header_media = mapping.template_id._wac_spec().header_media \
                if mapping.template_id.components else False

    @api.constrains("header_file", "header_filename")
    def _check_header_file(self):
        self._check_params()

    # ------------------------------------------------------------
    # VALIDATION
    # ------------------------------------------------------------

    def _wac_problems(self, for_send=False):
        problems = super()._wac_problems(for_send=for_send)
        if not self.template_id.components:
            return problems
        kind = self.template_id._wac_spec().header_media
        account = self.template_id.account_id
        if kind:
            attachment = self._wac_header_attachment()
            label = account._wac_media_kind_label(kind, article=True)
            if not attachment:
                problems.append(self.env._(
                    "The template's header is %(kind)s: upload the header file on the "
                    "mapping.", kind=label))
            else:
                try:
                    account._wac_check_media(attachment, kind, self.header_filename)
                except UserError as refusal:
                    problems.append(self.env._("Header file: %s", refusal.args[0]))
        for line in self.param_ids.filtered(
                lambda li: li.component == "button" and li.source == "fixed_text"
                and (li.fixed_value or "").strip()):
            try:
                self._wac_url_value(line, line.fixed_value)
            except ValueError as error:
                problems.append(str(error))
        return problems

    # ------------------------------------------------------------
    # RENDERING
    # ------------------------------------------------------------

    def _wac_header_attachment(self):
        """The ``ir.attachment`` holding :attr:`header_file`, or an empty recordset."""
        self.ensure_one()
        if not self.id:
            return self.env["ir.attachment"]
        return self.env["ir.attachment"].sudo().search([
            ("res_model", "=", self._name), ("res_id", "=", self.id),
            ("res_field", "=", "header_file")], limit=1)

    def _wac_header_media(self, account, attachment=None):
        """The media object of the template's header for one send, the file uploaded to
        Meta (or its media id reused); ``None`` when the header is not a file.

        :param account: the sending account
        :param attachment: a file for this send only, instead of the mapping's (and named
            by its own name)
        :raises ValueError: no file, or a file Meta refuses (the send fails with the reason)
        :raises WaCloudError: Meta's answer to the upload
        :rtype: dict | None
        """
        self.ensure_one()
        kind = self.template_id._wac_spec().header_media
        if not kind:
            return None
        per_send = bool(attachment)
        attachment = attachment or self._wac_header_attachment()
        if not attachment:
            raise ValueError(self.env._(
                "The template's header is %(kind)s: upload the header file on the mapping.",
                kind=account._wac_media_kind_label(kind, article=True)))
        filename = (not per_send and self.header_filename) or attachment.name
        try:
            media_id = account._wac_upload_media(attachment, kind=kind, filename=filename)
        except UserError as refusal:
            raise ValueError(refusal.args[0]) from None
        return {"id": media_id, "filename": filename} if kind == "document" \
            else {"id": media_id}

    def _wac_url_value(self, line, raw, limit=None):
        """The variable of a URL button, cleaned (:func:`~.template_params.url_suffix`), or a
        ``ValueError`` that names the button."""
        if limit is None:
            params = {p.key: p for p in self.template_id._wac_spec().params}
            limit = params[line.key].limit if line.key in params else tp.URL_LIMIT
        try:
            return tp.url_suffix(raw, limit=limit)
        except ValueError as error:
            raise ValueError(self.env._("URL button %(index)s: %(error)s",
                                        index=line.name, error=error)) from None

    @api.model
    def _wac_render_values(self, data, partner, company, lang, sources=None):
        values = super()._wac_render_values(data, partner, company, lang, sources=sources)
        values["appointment_id"] = "" if data.get("id") is None else str(data["id"])
        return values

    @api.model
    def _wac_guess_lines(self, template):
        # A URL button's variable is most often the appointment's reference.
        lines = super()._wac_guess_lines(template)
        for line in lines:
            if line["component"] == "button":
                line["source"] = "appointment_id"
        return lines
