from odoo import api, fields, models

ATTESTATION_KEYS = [
    ("support", "Support process"),
    ("compliance", "Meta and WhatsApp policies"),
]


class WacAttestation(models.Model):
    """A manager's statement that a readiness item that cannot be measured is met.

    One per account and item; withdrawing it deletes it. Both are written to the audit log.
    """

    _name = "wac.attestation"
    _description = "WhatsApp readiness attestation"
    _order = "account_id, key"
    _check_company_auto = True

    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    account_id = fields.Many2one("wac.account", required=True, ondelete="cascade",
                                 readonly=True, check_company=True)
    key = fields.Selection(ATTESTATION_KEYS, required=True, readonly=True)
    user_id = fields.Many2one("res.users", "Attested by", required=True, readonly=True,
                              default=lambda self: self.env.uid)
    note = fields.Text(readonly=True)

    _sql_constraints = [
        ("account_key_uniq", "unique(account_id, key)", "This item is already attested."),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        for record in records:
            self.env["wac.audit.log"]._wac_log(
                record.account_id, "attest", record._wac_key_label(), new=self.env._("attested"))
        return records

    def unlink(self):
        for record in self:
            self.env["wac.audit.log"]._wac_log(
                record.account_id, "attest", record._wac_key_label(),
                old=self.env._("attested"), new=self.env._("withdrawn"))
        return super().unlink()

    def _wac_key_label(self):
        return dict(self._fields["key"]._description_selection(self.env)).get(self.key)
