"""Who changed what in WhatsApp Coexistence, and when.

Odoo's tracking covers the account's chatter; this log also covers what has no chatter
(installation settings, mappings, contacts' consent) and the operator's actions (Retry,
Reprocess, Disconnect, the go-live override), in one list a manager can filter.
"""

from odoo import api, fields, models

AUDIT_ACTIONS = [
    ("change", "Change"),
    ("create", "Creation"),
    ("delete", "Deletion"),
    ("retry", "Retry"),
    ("reprocess", "Reprocess"),
    ("resume", "Resume"),
    ("disconnect", "Disconnect"),
    ("override", "Go-live override"),
    ("attest", "Attestation"),
    ("change_number", "Number change"),
]
# What a secret's old and new values are written as: never the value itself.
SECRET_SET = "set"
SECRET_REPLACED = "replaced"
SECRET_CLEARED = "cleared"
_MAX_VALUE = 500


class WacAuditLog(models.Model):
    """One audited change or action. Rows are written with ``sudo`` by the code that makes
    the change, never by hand: nobody has write, create or unlink rights on them.

    ``company_id`` empty means an installation setting: only system administrators read those.
    """

    _name = "wac.audit.log"
    _description = "WhatsApp audit log"
    _order = "create_date desc, id desc"
    _rec_name = "what"

    company_id = fields.Many2one("res.company", index=True, readonly=True)
    user_id = fields.Many2one("res.users", "Who", readonly=True, index=True,
                              default=lambda self: self.env.uid)
    action = fields.Selection(AUDIT_ACTIONS, required=True, readonly=True, index=True)
    res_model = fields.Char("Model", readonly=True)
    res_id = fields.Many2oneReference("Record", model_field="res_model", readonly=True)
    record_name = fields.Char("On", readonly=True)
    what = fields.Char(readonly=True, required=True)
    old_value = fields.Char("Old value", readonly=True)
    new_value = fields.Char("New value", readonly=True)
    note = fields.Text(readonly=True)

    @api.model
    def _wac_log(self, records, action, what, old=None, new=None, note=None, company=None):
        """Record one entry per record of ``records`` (or one installation entry when
        ``records`` is empty and ``company`` is not given).

        :param action: a key of :data:`AUDIT_ACTIONS`
        :param company: the company the entry belongs to; defaults to each record's company
        """
        rows = []
        for record in records or [None]:
            record_company = company
            if record_company is None and record is not None and "company_id" in record._fields:
                record_company = record.company_id
            rows.append({
                "company_id": record_company.id if record_company else False,
                "user_id": self.env.uid,
                "action": action,
                "res_model": record._name if record is not None else False,
                "res_id": record.id if record is not None else False,
                "record_name": (record.display_name or "")[:_MAX_VALUE]
                if record is not None else False,
                "what": what,
                "old_value": _short(old),
                "new_value": _short(new),
                "note": note or False,
            })
        return self.sudo().create(rows)

    @api.model
    def _wac_log_writes(self, records, vals, field_names, secret_fields=()):
        """Log the old → new value of each of ``field_names`` present in ``vals`` and about
        to change. Call it *before* the write: it reads the old values.

        ``secret_fields`` are written as "set" / "replaced" / "cleared", never their value.
        """
        names = [name for name in field_names if name in vals]
        if not names:
            return self.browse()
        logs = self.browse()
        for record in records:
            for name in names:
                field = record._fields[name]
                old = record[name]
                new = vals[name]
                if name in secret_fields:
                    if not new and not old:
                        continue
                    old, new = (SECRET_SET if old else False), (
                        SECRET_CLEARED if not new else SECRET_REPLACED if old else SECRET_SET)
                else:
                    old = _display(record, field, old)
                    new = _display(record, field, field.convert_to_record(
                        field.convert_to_cache(new, record), record))
                    if old == new:
                        continue
                logs |= self._wac_log(record, "change", field._description_string(self.env),
                                      old=old, new=new)
        return logs


def _display(record, field, value):
    """A human form of a field value: selection labels, record names, plain text."""
    if field.type == "selection":
        return dict(field._description_selection(record.env)).get(value, value or "")
    if field.type in ("many2one", "many2many", "one2many"):
        return ", ".join(value.mapped("display_name"))
    if field.type == "boolean":
        return record.env._("Yes") if value else record.env._("No")
    if value is False or value is None:
        return ""
    return str(value)


def _short(value):
    if value is None or value is False or value == "":
        return False
    text = str(value)
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE - 1] + "…"
