from odoo import api, fields, models

TEMPLATE_STATUSES = [
    ("PENDING", "Pending"),
    ("APPROVED", "Approved"),
    ("REJECTED", "Rejected"),
    ("PAUSED", "Paused"),
    ("DISABLED", "Disabled"),
    ("IN_APPEAL", "In appeal"),
    ("PENDING_DELETION", "Pending deletion"),
    ("DELETED", "Deleted"),
    ("ARCHIVED", "Archived"),
    ("LIMIT_EXCEEDED", "Limit exceeded"),
]
QUALITY_SCORES = [("GREEN", "High"), ("YELLOW", "Medium"), ("RED", "Low"), ("UNKNOWN", "Unknown")]
# message_template_status_update events that are not statuses of their own.
EVENT_STATUS = {"UNARCHIVED": "APPROVED", "REINSTATED": "APPROVED", "FLAGGED": "APPROVED"}


class WacTemplate(models.Model):
    """A message template of a company's WABA, kept current by sync and by webhooks."""

    _name = "wac.template"
    _description = "WhatsApp Coexistence template"
    _order = "name, language"
    _check_company_auto = True

    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    account_id = fields.Many2one("wac.account", required=True, ondelete="cascade",
                                 check_company=True, readonly=True)
    name = fields.Char(required=True, readonly=True)
    language = fields.Char(required=True, readonly=True)
    meta_template_id = fields.Char("Meta template ID", index=True, readonly=True)
    category = fields.Char(readonly=True)
    status = fields.Selection(TEMPLATE_STATUSES, readonly=True, index=True)
    status_reason = fields.Char(readonly=True)
    quality_score = fields.Selection(QUALITY_SCORES, readonly=True)

    _sql_constraints = [
        ("name_lang_uniq", "unique(account_id, name, language)",
         "A template exists once per language in a WABA."),
    ]

    @api.model
    def _wac_apply_event(self, account, event):
        """Apply a template status, quality or category webhook; create the template when the
        webhook is the first news of it (it is then completed by the next sync)."""
        domain = [("account_id", "=", account.id)]
        template = self.search([*domain, ("meta_template_id", "=", event.template_id)], limit=1) \
            if event.template_id else self
        if not template and event.name:
            template = self.search(
                [*domain, ("name", "=", event.name), ("language", "=", event.language)], limit=1)
        vals = {"meta_template_id": event.template_id} if event.template_id else {}
        if event.field == "message_template_status_update" and event.event:
            vals.update(status=EVENT_STATUS.get(event.event, event.event),
                        status_reason=event.reason if event.reason != "NONE" else False)
            if event.category:
                vals["category"] = event.category
        elif event.field == "message_template_quality_update" and event.new_quality:
            vals["quality_score"] = event.new_quality
        elif event.field == "template_category_update" and event.new_category:
            vals["category"] = event.new_category
        if vals.get("status") not in dict(TEMPLATE_STATUSES):
            vals.pop("status", None)
        if template:
            template.write(vals)
        elif event.name and event.language:
            template = self.create(dict(vals, company_id=account.company_id.id,
                                        account_id=account.id, name=event.name,
                                        language=event.language))
        else:
            return "Template %s unknown; sync the templates, then reprocess" % event.template_id
        return "%s %s: %s" % (template.name, template.language, template.status or "?")
