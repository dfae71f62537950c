from odoo import api, fields, models

from ..tools.wa_cloud import phone as wa_phone


class ResPartner(models.Model):
    _inherit = "res.partner"

    wa_phone_key = fields.Char(
        "WhatsApp phone key", compute="_compute_wa_phone_key", store=True, index=True,
        help="The canonical WhatsApp form of the mobile (or phone) number: Brazil with its 9th "
        "digit, Argentina with 549, so that one person is found whatever form Meta sends.")
    wa_contact_ids = fields.One2many("wac.contact", "partner_id", string="WhatsApp identities")

    @api.depends("mobile", "phone", "country_id", "company_id")
    def _compute_wa_phone_key(self):
        default_region = self.env.company.country_id.code
        for partner in self:
            region = partner.country_id.code or partner.company_id.country_id.code or default_region
            number = wa_phone.normalize(partner.mobile or partner.phone or "", region)
            partner.wa_phone_key = wa_phone.canonical(number) if number else False
