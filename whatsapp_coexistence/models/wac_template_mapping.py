import re
from datetime import date, datetime, timedelta

import babel
import babel.dates
import pytz
from markupsafe import Markup

from odoo import Command, api, fields, models
from odoo.exceptions import ValidationError

from ..const import HELLO_WORLD
from ..tools.wa_cloud import template_library
from ..tools.wa_cloud import template_params as tp
from ..tools.wa_cloud.client import GraphClient
from .res_company import wac_local

MESSAGE_TYPES = [
    ("confirmation", "Confirmation"),
    ("reminder", "Reminder"),
    ("reschedule", "Reschedule"),
    ("cancellation", "Cancellation"),
]
# The fixed, safe list of values a template parameter can take. No expression, no eval: each
# source is computed by ``_wac_render_values``.
PARAM_SOURCES = [
    ("attendee_name", "Attendee name"),
    ("attendee_first_name", "Attendee first name"),
    ("appointment_date", "Appointment date"),
    ("appointment_time", "Appointment time"),
    ("appointment_weekday", "Appointment weekday"),
    ("location", "Location"),
    ("organizer", "Organizer"),
    ("company_name", "Company name"),
    ("appointment_title", "Appointment title"),
    ("fixed_text", "Fixed text"),
    ("appointment_id", "Appointment reference (ID)"),
]


def _babel_locale(lang):
    try:
        return babel.Locale.parse(lang or "en_US")
    except (ValueError, babel.UnknownLocaleError):
        return babel.Locale.parse("en_US")


# Guesses for the parameters of a template made elsewhere; a person checks them.
_GUESSES = [
    (re.compile(r"first|primeiro"), "attendee_first_name"),
    (re.compile(r"name|nome|client|customer|patient|paciente"), "attendee_name"),
    (re.compile(r"weekday|semana"), "appointment_weekday"),
    (re.compile(r"date|data|dia"), "appointment_date"),
    (re.compile(r"time|hora"), "appointment_time"),
    (re.compile(r"local|address|ender"), "location"),
    (re.compile(r"company|empresa|clinic|business|loja"), "company_name"),
    (re.compile(r"organi|doctor|medic|profission|staff"), "organizer"),
    (re.compile(r"title|titulo|service|servico|assunto"), "appointment_title"),
]
_POSITIONAL_GUESSES = ["attendee_first_name", "appointment_date", "appointment_time",
                       "location", "company_name"]


class WacTemplateMapping(models.Model):
    """Which approved template a company sends for each appointment message type.

    One mapping per (company, message type, language): the attendee's language picks among
    them, the lowest sequence being the company's default. Each template parameter is filled
    from a fixed list of appointment values (:data:`PARAM_SOURCES`), never from an expression.
    """

    _name = "wac.template.mapping"
    _description = "WhatsApp appointment template mapping"
    _order = "company_id, message_type, sequence, id"
    _check_company_auto = True

    company_id = fields.Many2one("res.company", required=True, index=True,
                                 default=lambda self: self.env.company)
    message_type = fields.Selection(MESSAGE_TYPES, required=True)
    template_id = fields.Many2one(
        "wac.template", required=True, ondelete="restrict", check_company=True,
        domain="[('company_id', '=', company_id), ('status', '=', 'APPROVED')]")
    language = fields.Char(related="template_id.language", store=True)
    template_status = fields.Selection(related="template_id.status")
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    param_ids = fields.One2many("wac.template.mapping.param", "mapping_id", string="Parameters",
                                copy=True)
    body_preview = fields.Text(compute="_compute_body_preview")
    check_result = fields.Html(readonly=True, copy=False, sanitize=True)

    _sql_constraints = [
        ("type_language_uniq", "unique(company_id, message_type, language)",
         "A company maps one template per message type and language."),
    ]

    @api.depends("message_type", "template_id")
    def _compute_display_name(self):
        labels = dict(self._fields["message_type"]._description_selection(self.env))
        for mapping in self:
            mapping.display_name = "%s: %s" % (labels.get(mapping.message_type, "?"),
                                               mapping.template_id.display_name or "?")

    @api.depends("template_id", "param_ids.source", "param_ids.fixed_value")
    def _compute_body_preview(self):
        for mapping in self:
            if not mapping.template_id:
                mapping.body_preview = False
                continue
            spec = mapping.template_id._wac_spec()
            labels = dict(self.env["wac.template.mapping.param"]._fields[
                "source"]._description_selection(self.env))
            values = {
                line.key: (line.fixed_value or "") if line.source == "fixed_text"
                else "[%s]" % labels.get(line.source, "?")
                for line in mapping.param_ids
            }
            mapping.body_preview = spec.hydrate(values)

    # ------------------------------------------------------------
    # PARAMETER LINES
    # ------------------------------------------------------------

    @api.model
    def _wac_guess_lines(self, template):
        """Parameter lines for ``template``, with a sensible source for each."""
        spec = template._wac_spec()
        lines = []
        for position, param in enumerate(spec.params):
            source = template_library.DEFAULT_SOURCES.get(param.name) \
                if template.library_type else None
            if not source and param.name.isdigit():
                index = int(param.name) - 1
                source = (_POSITIONAL_GUESSES[index] if index < len(_POSITIONAL_GUESSES)
                          else "appointment_title")
                if param.component == "header":
                    source = "company_name"
            if not source:
                name = param.name.lower()
                source = next((s for pattern, s in _GUESSES if pattern.search(name)),
                              "appointment_title")
            lines.append({"sequence": position, "component": param.component,
                          "name": param.name, "source": source})
        return lines

    @api.onchange("template_id")
    def _onchange_template_id(self):
        if self.template_id:
            self.param_ids = [Command.clear()] + [
                Command.create(vals) for vals in self._wac_guess_lines(self.template_id)]

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("template_id") and not vals.get("param_ids"):
                template = self.env["wac.template"].browse(vals["template_id"])
                vals["param_ids"] = [Command.create(v) for v in self._wac_guess_lines(template)]
        mappings = super().create(vals_list)
        for mapping in mappings:
            self.env["wac.audit.log"]._wac_log(mapping, "create", self.env._("Mapping"),
                                               new=mapping.display_name)
        return mappings

    def write(self, vals):
        self.env["wac.audit.log"]._wac_log_writes(
            self, vals, ["message_type", "template_id", "sequence", "active"])
        return super().write(vals)

    def unlink(self):
        for mapping in self:
            self.env["wac.audit.log"]._wac_log(mapping, "delete", self.env._("Mapping"),
                                               old=mapping.display_name)
        return super().unlink()

    # ------------------------------------------------------------
    # VALIDATION
    # ------------------------------------------------------------

    def _wac_problems(self, for_send=False):
        """Everything that stops this mapping from producing a valid send.

        :param bool for_send: also require the template to be approved now
        :rtype: list[str]
        """
        self.ensure_one()
        _ = self.env._
        template = self.template_id
        problems = []
        if not template.components:
            problems.append(_("The template's content is unknown: sync the templates."))
            return problems
        spec = template._wac_spec()
        problems += [_("Template: %s", p) for p in spec.problems]
        problems += [_("Parameters: %s", p) for p in spec.check_keys(self.param_ids.mapped("key"))]
        for line in self.param_ids.filtered(
                lambda li: li.source == "fixed_text" and not (li.fixed_value or "").strip()):
            problems.append(_("Parameter %s: a fixed text needs a value.", line.key))
        if for_send and template.status != "APPROVED":
            problems.append(_(
                "The template is %(status)s at Meta; only approved templates can be sent.",
                status=dict(template._fields["status"]._description_selection(self.env)).get(
                    template.status, "?")))
        account = template.account_id
        if (template.name == HELLO_WORLD and account.automation_mode == "enabled"
                and not account.pilot_allowlist):
            problems.append(_(
                "hello_world is Meta's sample template: with automation enabled it may only "
                "go to the pilot allowlist, which is empty."))
        return problems

    @api.constrains("template_id", "param_ids", "company_id")
    def _check_params(self):
        for mapping in self:
            problems = mapping._wac_problems()
            if problems:
                raise ValidationError(self.env._(
                    "The mapping %(mapping)s does not fit its template:\n%(problems)s",
                    mapping=mapping.display_name, problems="\n".join(problems)))

    def action_check(self):
        """Check the mapping against the template and show the message as it would be sent."""
        self.ensure_one()
        problems = self._wac_problems(for_send=True)
        sample = self._wac_sample_values()
        spec = self.template_id._wac_spec()
        if problems:
            self.check_result = Markup("<p class='text-danger'>%s</p><ul>%s</ul>") % (
                self.env._("Not ready:"),
                Markup("").join(Markup("<li>%s</li>") % p for p in problems))
            kind = "danger"
        else:
            self.check_result = Markup(
                "<p class='text-success'>%s</p><pre class='text-wrap'>%s</pre>") % (
                self.env._("Ready. With a sample appointment the customer reads:"),
                spec.hydrate(sample))
            kind = "success"
        return self.template_id.account_id._wac_notify(
            self.env._("Mapping checked: %s", "; ".join(problems) if problems
                       else self.env._("ready")), kind)

    # ------------------------------------------------------------
    # RENDERING
    # ------------------------------------------------------------

    @api.model
    def _wac_render_values(self, data, partner, company, lang, sources=None):
        """Every parameter source of :data:`PARAM_SOURCES`, as text.

        Dates and times are in the company's time zone (``res.company._wac_tz``) and the
        template's language: ``pt_BR`` gives "terça-feira, 3 de fevereiro de 2026" and "14:30".

        :param dict data: the appointment (``calendar.event._wac_data``)
        :param sources: the sources a mapping uses, when not all: the company's address (the
            location of an appointment without one) is only formatted when it is needed
        """
        tz = company._wac_tz(data.get("organizer_tz"))
        locale = _babel_locale(lang)
        if data.get("allday") and data.get("start_date"):
            day = fields.Date.from_string(data["start_date"])
            time_text = self.with_context(lang=lang).env._("all day")
        else:
            local = wac_local(data["start"], tz)
            day = local.date()
            time_text = babel.dates.format_time(local, format="short", locale=locale)
        location = data.get("location") or (
            company.partner_id._display_address(without_company=True)
            if sources is None or "location" in sources else "")
        name = (partner.name or "").strip()
        return {
            "attendee_name": name,
            "attendee_first_name": name.split()[0] if name else "",
            "appointment_date": babel.dates.format_date(day, format="full", locale=locale),
            "appointment_time": time_text,
            "appointment_weekday": babel.dates.format_date(day, "EEEE", locale=locale),
            "location": location,
            "organizer": data.get("organizer") or "",
            "company_name": company.name or "",
            "appointment_title": data.get("name") or "",
        }

    def _wac_sample_values(self):
        """Parameter values of a sample appointment (tomorrow 14:30), for the Check button."""
        self.ensure_one()
        tz = self.company_id._wac_tz()
        local = datetime.combine(date.today() + timedelta(days=1), datetime.min.time()).replace(
            hour=14, minute=30)
        start = tz.localize(local).astimezone(pytz.utc).replace(tzinfo=None)
        data = {"id": 0, "name": self.env._("Consultation"),
                "start": fields.Datetime.to_string(start), "location": "",
                "organizer": self.env.user.name}
        partner = self.env["res.partner"].new({"name": "Maria Silva"})
        return self._wac_values_for(data, partner)[0]

    def _wac_values_for(self, data, partner):
        """The sanitised parameter values of a send and the template spec."""
        self.ensure_one()
        spec = self.template_id._wac_spec()
        rendered = self._wac_render_values(data, partner, self.company_id,
                                           self.template_id.language,
                                           sources=set(self.param_ids.mapped("source")))
        limits = {p.key: p.limit for p in spec.params}
        values = {}
        for line in self.param_ids:
            raw = line.fixed_value if line.source == "fixed_text" else rendered.get(line.source)
            limit = limits.get(line.key, tp.BODY_PARAM_LIMIT)
            if line.component == "button":
                values[line.key] = self._wac_url_value(line, raw, limit)
            else:
                values[line.key] = tp.sanitize_param(raw, limit=limit)
        return spec.fit(values), spec

    @api.model
    def _wac_for(self, company, kind, lang):
        """The mapping for a message type in the attendee's language, else in the same
        language family, else the company's language, else the first one."""
        mappings = self.sudo().search_fetch([
            ("company_id", "=", company.id), ("message_type", "=", kind)],
            ["language", "template_id", "company_id", "message_type"])
        if not mappings:
            return mappings
        for wanted in (lang, company.partner_id.lang):
            if not wanted:
                continue
            exact = mappings.filtered(lambda m, w=wanted: m.language == w)
            if exact:
                return exact[0]
            family = mappings.filtered(
                lambda m, w=wanted: (m.language or "").split("_")[0] == w.split("_")[0])
            if family:
                return family[0]
        return mappings[0]

    def _wac_build_payload(self, data, partner, to, key, account):
        """The exact JSON body of the send and the text the customer reads, or raise
        ``ValueError`` with what is wrong."""
        self.ensure_one()
        problems = self._wac_problems(for_send=True)
        if problems:
            raise ValueError("; ".join(problems))
        values, spec = self._wac_values_for(data, partner)
        payloads = {}
        for button in spec.quick_replies:
            action = tp.button_action(button.text, account.reply_confirm_words,
                                      account.reply_cancel_words)
            if not action and self.template_id.library_type:
                action = (tp.CONFIRM, tp.CANCEL)[button.index] if button.index < 2 else None
            if action:
                payloads[button.index] = tp.make_payload(action, data["id"])
        components = spec.build_components(values, payloads, self._wac_header_media(account))
        payload = GraphClient.build_template_payload(
            to, self.template_id.name, self.template_id.language, components,
            biz_opaque_callback_data=key)
        return payload, spec.hydrate(values)


class WacTemplateMappingParam(models.Model):
    """One template parameter and the appointment value that fills it."""

    _name = "wac.template.mapping.param"
    _description = "WhatsApp template parameter source"
    _order = "mapping_id, sequence, id"

    mapping_id = fields.Many2one("wac.template.mapping", required=True, ondelete="cascade",
                                 index=True)
    company_id = fields.Many2one(related="mapping_id.company_id", store=True, index=True)
    sequence = fields.Integer(default=10)
    component = fields.Selection([("header", "Header"), ("body", "Body"),
                                  ("button", "URL button")], required=True, default="body")
    name = fields.Char("Parameter", required=True,
                       help="1, 2... for a positional template; the name for a named one. For "
                            "a URL button, the button's position counted from 0.")
    source = fields.Selection(PARAM_SOURCES, required=True, default="attendee_name")
    fixed_value = fields.Char()

    def write(self, vals):
        self.env["wac.audit.log"]._wac_log_writes(self, vals, ["source", "fixed_value"])
        return super().write(vals)
    key = fields.Char(compute="_compute_key")

    @api.constrains("component", "name", "source", "fixed_value")
    def _check_line(self):
        self.mapping_id._check_params()

    @api.depends("component", "name")
    def _compute_key(self):
        for line in self:
            line.key = "%s:%s" % (line.component, (line.name or "").strip())
