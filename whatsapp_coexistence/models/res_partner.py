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

    def _wac_number(self, company):
        """This partner's number usable on WhatsApp, in E.164, or ``None``.

        :param company: the sending company; its country reads a number without one
        """
        self.ensure_one()
        # The company partner's country: res.company.country_id is computed from the address.
        region = self.country_id.code or company.partner_id.country_id.code
        for number in (self.mobile, self.phone):
            e164 = wa_phone.normalize(number, region) if number else None
            if e164:
                return e164
        return None

    def _wac_recipient_refusal(self, number, company, pilot, opted_out):
        """Why this partner gets no automated message, or ``None``: the one check (and the one
        wording) of the planner and of the send job.

        :param number: the partner's number in E.164 (:meth:`_wac_number`), or ``None``
        :param set pilot: the account's pilot numbers (digits); empty: everyone
        :param bool opted_out: the partner's number opted out in ``company``
        """
        self.ensure_one()
        _ = self.env._
        if not number:
            return _("%(name)s has no mobile number usable on WhatsApp.", name=self.name)
        if opted_out:
            return _("%(name)s opted out of automated WhatsApp messages: nothing is sent.",
                     name=self.name)
        if pilot and wa_phone.wa_digits(number) not in pilot:
            return _("%(name)s is not in the pilot allowlist of %(company)s: nothing is sent.",
                     name=self.name, company=company.name)
        return None
