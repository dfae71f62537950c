import functools
import json
import logging

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..const import QUALITY_LEVELS
from ..tools.wa_cloud import errors as wa_errors
from ..tools.wa_cloud import template_library
from ..tools.wa_cloud.template_params import TemplateSpec
from .wac_webhook_units import claim, lock_rows

#: Advisory lock class of a template created from a webhook (``wac.template._wac_claim``).
CLAIM_LOCK_CLASS = 0x5741_4354

_logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=256)
def _spec(name, language, components, parameter_format):
    """A template's :class:`TemplateSpec` (immutable), read once per process and content: every
    send validates its mapping and fills its parameters against it.

    :param str components: the stored JSON; unknown or unreadable counts as no component
    """
    try:
        value = json.loads(components or "[]")
    except ValueError:
        value = []
    return TemplateSpec.from_components(name, language, value if isinstance(value, list) else [],
                                        parameter_format)

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
# message_template_status_update events that are not statuses of their own.
EVENT_STATUS = {"UNARCHIVED": "APPROVED", "REINSTATED": "APPROVED", "FLAGGED": "APPROVED"}
# What ``GET /<WABA_ID>/message_templates`` is asked for (Meta's default omits quality).
SYNC_FIELDS = ("name", "language", "status", "category", "components", "parameter_format",
               "id", "quality_score", "rejected_reason")


class WacTemplate(models.Model):
    """A message template of a company's WABA, kept current by sync and by webhooks.

    The components are stored as Meta lists them (JSON); what a send must provide is read from
    them by :class:`~..tools.wa_cloud.template_params.TemplateSpec`. Templates that disappear
    from the WABA are marked ``DELETED``, never unlinked: mappings and sent messages keep
    pointing at them.
    """

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
    quality_score = fields.Selection(QUALITY_LEVELS, readonly=True)

    # Content, from the sync -------------------------------------------------------------------
    components = fields.Text(readonly=True, help="The template's components as Meta lists them "
                             "(JSON).")
    parameter_format = fields.Selection(
        [("POSITIONAL", "Positional ({{1}})"), ("NAMED", "Named ({{name}})")], readonly=True)
    header_text = fields.Char(compute="_compute_content", store=True)
    body_text = fields.Text(compute="_compute_content", store=True)
    footer_text = fields.Char(compute="_compute_content", store=True)
    buttons_text = fields.Char("Buttons", compute="_compute_content", store=True)
    param_names = fields.Char(
        "Parameters", compute="_compute_content", store=True,
        help="What a send fills, as component:name (body:1, body:customer_name...).")
    param_count = fields.Integer("Parameter count", compute="_compute_content", store=True)
    content_problems = fields.Char(
        compute="_compute_content", store=True,
        help="Parts of the template that appointment messages cannot fill.")
    library_type = fields.Selection(
        [("confirmation", "Confirmation"), ("reminder", "Reminder"),
         ("reschedule", "Reschedule"), ("cancellation", "Cancellation")],
        compute="_compute_library_type", store=True,
        help="Set for the ready-made appointment templates of this addon.")
    synced_on = fields.Datetime("Last synced", readonly=True)
    mapping_ids = fields.One2many("wac.template.mapping", "template_id", string="Mappings")

    _sql_constraints = [
        ("name_lang_uniq", "unique(account_id, name, language)",
         "A template exists once per language in a WABA."),
    ]

    # ------------------------------------------------------------
    # COMPUTE
    # ------------------------------------------------------------

    @api.depends("components", "parameter_format", "name", "language")
    def _compute_content(self):
        for template in self:
            spec = template._wac_spec()
            template.header_text = spec.header_text or False
            template.body_text = spec.body_text or False
            template.footer_text = spec.footer_text or False
            template.buttons_text = " | ".join(
                "%s%s" % (b.text, "" if b.type == "QUICK_REPLY" else " (%s)" % b.type.lower())
                for b in spec.buttons) or False
            template.param_names = ", ".join(spec.param_keys) or False
            template.param_count = len(spec.params)
            template.content_problems = "; ".join(spec.problems) if template.components \
                else False

    @api.depends("name")
    def _compute_library_type(self):
        for template in self:
            template.library_type = template_library.message_type_of(template.name)

    @api.depends("name", "language", "status")
    def _compute_display_name(self):
        labels = dict(self._fields["status"]._description_selection(self.env))
        for template in self:
            template.display_name = "%s (%s)%s" % (
                template.name, template.language,
                "" if template.status == "APPROVED"
                else " - %s" % labels.get(template.status, "?"))

    def _wac_spec(self):
        """What a send of this template must provide.

        :rtype: TemplateSpec
        """
        self.ensure_one()
        return _spec(self.name, self.language, self.components or "", self.parameter_format)

    # ------------------------------------------------------------
    # WEBHOOKS
    # ------------------------------------------------------------

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
            # Template events of one WABA run in parallel jobs: a conflict is retried quietly.
            lock_rows(self.env.cr, "wac_template", template.ids)
            template.write(vals)
        elif event.name and event.language:
            self._wac_claim(account, event.name, event.language)
            template = self.create(dict(vals, company_id=account.company_id.id,
                                        account_id=account.id, name=event.name,
                                        language=event.language))
        else:
            return "Template %s unknown; sync the templates, then reprocess" % event.template_id
        if template.status == "APPROVED":
            template._wac_ensure_library_mappings()
        return "%s %s: %s" % (template.name, template.language, template.status or "?")

    @api.model
    def _wac_claim(self, account, name, language):
        """Before a template is created from a webhook: fail quietly if another job created
        it since this transaction began, and wait for one creating it now.

        Template events of one WABA run in parallel jobs, and a delivery can name the same
        new template in hundreds of changes: the ORM's ``INSERT`` then failed on the unique
        key with an ERROR line per try (999 in one fuzz run), and the event was recorded
        failed. :func:`~.wac_webhook_units.claim` fails instead with a serialization failure,
        without a log line (classified *retry*: the next try finds the template), and makes a
        second creator wait for the first.
        """
        claim(self.env.cr, CLAIM_LOCK_CLASS, ["%s:%s:%s" % (account.id, name, language)], SQL(
            """INSERT INTO wac_template (company_id, account_id, name, language)
               VALUES (%s, %s, %s, %s) ON CONFLICT (account_id, name, language) DO NOTHING""",
            account.company_id.id, account.id, name, language))

    # ------------------------------------------------------------
    # SYNC
    # ------------------------------------------------------------

    @api.model
    def _wac_vals_from_meta(self, item):
        """Template values from one item of ``GET message_templates``."""
        quality = item.get("quality_score")
        if isinstance(quality, dict):
            quality = quality.get("score")
        status = str(item.get("status") or "").upper()
        vals = {
            "name": item.get("name"),
            "language": item.get("language"),
            "meta_template_id": str(item["id"]) if item.get("id") else False,
            "category": item.get("category") or False,
            "components": json.dumps(item.get("components") or [], ensure_ascii=False,
                                     sort_keys=True),
            "parameter_format": str(item.get("parameter_format") or "").upper() or False,
            "status_reason": (item.get("rejected_reason")
                              if item.get("rejected_reason") not in (None, "NONE") else False),
        }
        if vals["parameter_format"] not in ("POSITIONAL", "NAMED"):
            vals["parameter_format"] = False
        if status in dict(TEMPLATE_STATUSES):
            vals["status"] = status
        if quality in dict(QUALITY_LEVELS):
            vals["quality_score"] = quality
        return vals

    @api.model
    def _wac_sync_account(self, account):
        """Bring the templates of ``account`` in line with its WABA.

        Upsert by Meta id, then by (name, language); the pages of ``GET message_templates``
        are followed to the end. Only after a complete listing are the templates Meta no longer
        lists marked ``DELETED`` (a failed page must not delete anything).

        :raises WaCloudError: when Meta refuses or cannot be reached
        :returns: ``(created, updated, deleted)`` counts
        """
        account.ensure_one()
        if not account.waba_id:
            raise UserError(self.env._(
                "Fill in the WhatsApp Business Account ID of %(company)s first.",
                company=account.company_id.name))
        items = list(account._wac_client().iter_templates(account.waba_id, fields=SYNC_FIELDS))
        existing = self.with_context(active_test=False).search([("account_id", "=", account.id)])
        by_meta_id = {t.meta_template_id: t for t in existing if t.meta_template_id}
        by_key = {(t.name, t.language): t for t in existing}
        now = fields.Datetime.now()
        seen, to_create = self.browse(), []
        created = updated = 0
        for item in items:
            if not item.get("name") or not item.get("language"):
                continue
            vals = self._wac_vals_from_meta(item)
            template = by_meta_id.get(vals["meta_template_id"]) or by_key.get(
                (vals["name"], vals["language"]))
            if template:
                changed = {k: v for k, v in vals.items() if template[k] != v}
                if changed:
                    template.write(dict(changed, synced_on=now))
                    updated += 1
                seen |= template
            else:
                to_create.append(dict(vals, account_id=account.id, synced_on=now,
                                      company_id=account.company_id.id))
        new = self.create(to_create)
        created = len(new)
        gone = existing - seen - existing.filtered(lambda t: t.status == "DELETED")
        gone.write({"status": "DELETED", "synced_on": now})
        (seen | new).filtered(lambda t: t.status == "APPROVED")._wac_ensure_library_mappings()
        return created, updated, len(gone)

    @api.model
    def action_sync_all(self):
        """Sync the templates of every connected account of the selected companies."""
        accounts = self.env["wac.account"].search([
            ("company_id", "in", self.env.companies.ids), ("waba_id", "!=", False)])
        if not accounts:
            raise UserError(self.env._(
                "No WhatsApp account with a WABA ID in the selected companies."))
        messages, kind = [], "success"
        for account in accounts:
            try:
                created, updated, deleted = self._wac_sync_account(account)
            except wa_errors.WaCloudError as error:
                messages.append("%s: %s" % (account.company_id.name,
                                            account._wac_record_error(error)))
                kind = "danger"
                continue
            messages.append(self.env._(
                "%(company)s: %(created)s new, %(updated)s updated, %(deleted)s deleted",
                company=account.company_id.name, created=created, updated=updated,
                deleted=deleted))
        return accounts[:1]._wac_notify("\n".join(messages), kind)

    @api.model
    def action_create_library_all(self):
        """Submit the ready-made appointment templates to the current company's WABA."""
        account = self.env.company.wa_account_id
        if not account:
            raise UserError(self.env._(
                "%(company)s has no WhatsApp account yet.", company=self.env.company.name))
        return self._wac_create_library(account)

    @api.model
    def _wac_sync_for_user(self, account):
        """Sync ``account`` for a person who asked (its *Sync templates* button): remember when,
        and tell them how it went."""
        account.ensure_one()
        try:
            created, updated, deleted = self._wac_sync_account(account)
        except wa_errors.WaCloudError as error:
            return account._wac_notify(account._wac_record_error(error), "danger")
        account.templates_synced_on = fields.Datetime.now()
        return account._wac_notify(self.env._(
            "Templates synced: %(created)s new, %(updated)s updated, %(deleted)s no longer at "
            "Meta.", created=created, updated=updated, deleted=deleted), "success")

    @api.model
    def _wac_cron_sync_templates(self):
        """Daily: sync the templates of every connected account; one failure stops nothing."""
        for account in self.env["wac.account"].search(
                [("state", "=", "connected"), ("waba_id", "!=", False)]):
            try:
                self._wac_sync_account(account)
                account.templates_synced_on = fields.Datetime.now()
            except (wa_errors.WaCloudError, UserError) as error:
                _logger.warning("Template sync of %s failed: %s", account.display_name, error)
                account.last_error = wa_errors.sanitize(str(error))

    # ------------------------------------------------------------
    # LIBRARY
    # ------------------------------------------------------------

    @api.model
    def _wac_create_library(self, account):
        """Submit the ready-made appointment templates (UTILITY; confirmation, reminder,
        reschedule, cancellation; pt_BR and en_US) to the WABA of ``account``.

        Idempotent: a template this WABA already has (same name and language) is skipped.
        Each template's outcome is reported on its own line; their approval then arrives by
        webhook or sync, and approved ones are mapped automatically.
        """
        account.ensure_one()
        if not account.waba_id:
            raise UserError(self.env._("Fill in the WhatsApp Business Account ID first."))
        try:
            self._wac_sync_account(account)
        except wa_errors.WaCloudError as error:
            return account._wac_notify(account._wac_record_error(error), "danger")
        existing = {(t.name, t.language): t for t in account.template_ids}
        client = account._wac_client()
        lines, failed = [], 0
        for kind, lang in template_library.entries():
            payload = template_library.creation_payload(kind, lang)
            key = (payload["name"], lang)
            if key in existing:
                lines.append(self.env._("%(name)s (%(lang)s): already in the WABA (%(status)s)",
                                        name=key[0], lang=lang,
                                        status=existing[key].status or "?"))
                continue
            try:
                self._wac_submit_library_template(account, client, payload, lang)
            except wa_errors.WaCloudError as error:
                failed += 1
                lines.append(self.env._("%(name)s (%(lang)s): refused: %(error)s",
                                        name=key[0], lang=lang, error=str(error)))
                continue
            lines.append(self.env._("%(name)s (%(lang)s): submitted for approval",
                                    name=key[0], lang=lang))
        account.message_post(body=Markup("<p>%s</p><ul>%s</ul>") % (
            self.env._("Appointment templates"),
            Markup("").join(Markup("<li>%s</li>") % line for line in lines)),
            subtype_xmlid="mail.mt_note")
        return account._wac_notify("\n".join(lines), "warning" if failed else "success")

    @api.model
    def _wac_submit_library_template(self, account, client, payload, lang):
        """Create one library template at Meta and its record here, as Meta answered.

        :raises WaCloudError: when Meta refuses it
        """
        answer = client.create_template(account.waba_id, payload)
        status = answer.get("status")
        return self.create({
            "company_id": account.company_id.id, "account_id": account.id,
            "name": payload["name"], "language": lang,
            "meta_template_id": str(answer.get("id") or "") or False,
            "status": status if status in dict(TEMPLATE_STATUSES) else "PENDING",
            "category": answer.get("category") or "UTILITY",
            "parameter_format": "NAMED",
            "components": json.dumps(payload["components"], ensure_ascii=False, sort_keys=True),
        })


    def _wac_ensure_library_mappings(self):
        """Map each approved library template to its message type, for companies that have no
        mapping for that type and language yet; parameters follow the library's sources."""
        Mapping = self.env["wac.template.mapping"].sudo().with_context(active_test=False)
        for template in self.filtered(lambda t: t.library_type and t.status == "APPROVED"):
            exists = Mapping.search_count([
                ("company_id", "=", template.company_id.id),
                ("message_type", "=", template.library_type),
                ("language", "=", template.language)])
            if exists:
                continue
            Mapping.create({
                "company_id": template.company_id.id,
                "message_type": template.library_type,
                "template_id": template.id,
            })
