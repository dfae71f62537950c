import logging
import re

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..const import (
    ACCOUNT_STATES,
    AUTOMATION_MODES,
    DEFAULT_GRAPH_BASE_URL,
    DEFAULT_GRAPH_VERSION,
    PARAM_APP_ID,
    PARAM_ES_CONFIG_ID,
    PARAM_GRAPH_BASE_URL,
    PARAM_GRAPH_VERSION,
    PARAM_PREFIX,
    QUALITY_LEVELS,
)
from ..tools.wa_cloud import errors as wa_errors
from ..tools.wa_cloud import phone as wa_phone
from ..tools.wa_cloud import webhook
from ..tools.wa_cloud.client import GraphClient
from .wac_webhook_units import CONCURRENCY_ERRORS, lock_rows

_logger = logging.getLogger(__name__)

_GRAPH_ID = re.compile(r"^\d{5,32}$")


class WacAccount(models.Model):
    """The WhatsApp Business number of one company, in coexistence mode.

    Exactly one account per company. This file holds its connection, lifecycle and
    readiness; its automation settings, history progress, health and console are extensions
    in ``wac_account_*.py``. The access token is write-only: ``wac.vault`` encrypts it on
    write, and only :meth:`_wac_client` has the vault decrypt it.
    """

    _name = "wac.account"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _description = "WhatsApp Coexistence Account"
    _order = "company_id"
    _check_company_auto = True

    company_id = fields.Many2one(
        "res.company", required=True, index=True, ondelete="cascade", tracking=True,
        default=lambda self: self.env.company,
    )
    state = fields.Selection(
        ACCOUNT_STATES, string="Connection", default="draft", required=True, readonly=True,
        tracking=True, copy=False,
    )
    state_reason = fields.Char(readonly=True, copy=False, help="Why the account left the "
                               "connected state, as Meta reported it.")

    # Meta identifiers -------------------------------------------------------------------------
    waba_id = fields.Char("WhatsApp Business Account ID", tracking=True, copy=False)
    phone_number_id = fields.Char("Phone Number ID", tracking=True, copy=False)
    display_phone_number = fields.Char(tracking=True, copy=False)
    business_id = fields.Char("Business Portfolio ID", copy=False)
    verified_name = fields.Char(readonly=True, copy=False)
    quality_rating = fields.Selection(QUALITY_LEVELS, readonly=True, copy=False)
    is_on_biz_app = fields.Boolean(
        "Coexistence confirmed", readonly=True, copy=False,
        help="Meta reports that this number is also used in the WhatsApp Business App.",
    )

    # Access token (write-only) ----------------------------------------------------------------
    access_token = fields.Char(
        compute="_compute_access_token", inverse="_inverse_access_token",
        help="A System User access token of the business with whatsapp_business_messaging and "
        "whatsapp_business_management. It is encrypted on save and never shown again.",
    )
    access_token_enc = fields.Char(groups="base.group_system", copy=False, readonly=True)
    token_set_on = fields.Datetime(readonly=True, copy=False)
    token_set_by = fields.Many2one("res.users", readonly=True, copy=False)
    token_hint = fields.Char(readonly=True, copy=False)
    token_info = fields.Char(compute="_compute_token_info")

    # Automation -------------------------------------------------------------------------------
    automation_mode = fields.Selection(
        AUTOMATION_MODES, default="disabled", required=True, tracking=True,
        help="Disabled: nothing is sent automatically. Dry run: messages are prepared and logged "
        "but not sent. Enabled: messages are sent through the Cloud API.",
    )
    automation_paused = fields.Boolean(readonly=True, tracking=True, copy=False)
    automation_pause_reason = fields.Char(readonly=True, copy=False)
    pilot_allowlist = fields.Text(
        help="When set, automated messages only go to these numbers. One number per line; "
        "numbers without a country code use the company's country.",
    )

    template_ids = fields.One2many("wac.template", "account_id", string="Templates")
    templates_synced_on = fields.Datetime(readonly=True, copy=False)

    # Consent ----------------------------------------------------------------------------------
    opt_out_keywords = fields.Char(
        default="STOP, PARAR, SAIR, CANCELAR ENVIOS", required=True,
        help="A customer message made of one of these words (comma-separated, case and accents "
        "ignored) opts the customer out of automated messages.")
    opt_in_keywords = fields.Char(
        default="START, VOLTAR, VOLTAR ENVIOS",
        help="A customer message made of one of these words opts the customer back in.")

    # Health -----------------------------------------------------------------------------------
    last_check_on = fields.Datetime("Last test", readonly=True, copy=False)
    last_check_ok = fields.Boolean(readonly=True, copy=False)
    last_error = fields.Text(readonly=True, copy=False)
    onboarded_on = fields.Datetime(readonly=True, copy=False)
    onboarded_by = fields.Many2one("res.users", readonly=True, copy=False)
    onboarding_ids = fields.One2many("wac.onboarding", "account_id", readonly=True)

    _sql_constraints = [
        ("company_uniq", "unique(company_id)", "A company has one WhatsApp account at most."),
        ("waba_uniq", "unique(waba_id)",
         "This WhatsApp Business Account is already connected to another company."),
        ("phone_number_uniq", "unique(phone_number_id)",
         "This phone number is already connected to another company."),
    ]

    # ------------------------------------------------------------
    # COMPUTE / INVERSE / CONSTRAINTS
    # ------------------------------------------------------------

    @api.depends("company_id.name", "display_phone_number")
    def _compute_display_name(self):
        for account in self:
            parts = [account.company_id.name, account.display_phone_number]
            account.display_name = " · ".join(p for p in parts if p)

    def _compute_access_token(self):
        # Write-only: nobody, not even an administrator, reads the token back.
        self.access_token = False

    def _inverse_access_token(self):
        for account in self.filtered("access_token"):
            account._wac_set_token(account.access_token.strip())
        # Drop the plaintext from the cache too: a read after the write must not return it.
        self.invalidate_recordset(["access_token"], flush=False)

    @api.depends("token_set_on", "token_set_by", "token_hint")
    def _compute_token_info(self):
        for account in self:
            if not account.token_set_on:
                account.token_info = self.env._("Not set")
                continue
            account.token_info = self.env._(
                "Set on %(date)s by %(user)s, ends with %(hint)s",
                date=fields.Datetime.to_string(
                    fields.Datetime.context_timestamp(account, account.token_set_on))[:16],
                user=account.token_set_by.name or "?",
                hint=account.token_hint,
            )

    @api.constrains("waba_id", "phone_number_id")
    def _check_graph_ids(self):
        for account in self:
            for field in ("waba_id", "phone_number_id"):
                value = account[field]
                if value and not _GRAPH_ID.match(value):
                    raise ValidationError(self.env._(
                        "%(field)s must be the numeric id shown in WhatsApp Manager "
                        "(Account tools › Phone numbers), for example 106540352242922.",
                        field=account._fields[field].string,
                    ))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._normalize_vals(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._normalize_vals(vals)
        return super().write(vals)

    def _normalize_vals(self, vals):
        for field in ("waba_id", "phone_number_id", "display_phone_number"):
            if isinstance(vals.get(field), str):
                vals[field] = vals[field].strip() or False
        if isinstance(vals.get("pilot_allowlist"), str):
            company = self.env["res.company"].browse(vals.get("company_id")) or self.company_id[:1]
            vals["pilot_allowlist"] = self._normalize_allowlist(
                vals["pilot_allowlist"], (company or self.env.company).country_id.code)

    @api.model
    def _normalize_allowlist(self, text, region):
        """Return the allowlist as one E.164 number per line, or raise a ValidationError that
        names every number that could not be read."""
        numbers, bad = [], []
        for item in filter(None, (i.strip() for i in re.split(r"[\n,;]+", text or ""))):
            e164 = wa_phone.normalize(item, region)
            (numbers if e164 else bad).append(e164 or item)
        if bad:
            raise ValidationError(self.env._(
                "These pilot numbers could not be read: %(numbers)s. Write them with the country "
                "code, for example +55 11 98765-4321.", numbers=", ".join(bad)))
        return "\n".join(dict.fromkeys(numbers)) or False

    def _pilot_numbers(self):
        """The allowlist as a set of digit strings, every Brazil/Argentina variant included."""
        self.ensure_one()
        return {
            variant
            for line in (self.pilot_allowlist or "").splitlines() if line.strip()
            for variant in wa_phone.variants(line.strip())
        }

    # ------------------------------------------------------------
    # SECRETS: kept by wac.vault; these are the account's two doors to it
    # ------------------------------------------------------------

    def _wac_set_token(self, token):
        """Have the vault store ``token``; log who replaced it, never the token itself."""
        self.ensure_one()
        self.env["wac.audit.log"]._wac_log(
            self, "change", self.env._("Access token"),
            old="set" if self.token_set_on else False,
            new="replaced" if self.token_set_on else "set")
        hint = self.env["wac.vault"]._store_account_token(self, token)
        self._message_log(body=self.env._("Access token replaced (ends with %s).", hint))

    def _wac_client(self):
        """Return a Graph client authenticated as this company's business.

        The only caller of the vault's token decryption.

        :raises UserError: when no token is stored yet
        """
        self.ensure_one()
        access_token = self.env["wac.vault"]._account_token(self)
        if not access_token:
            raise UserError(self.env._(
                "%(company)s has no WhatsApp access token yet. Connect the number with "
                "Embedded Signup or paste a System User token in the account.",
                company=self.company_id.name))
        return self._wac_graph_client(access_token=access_token)

    @api.model
    def _wac_graph_client(self, access_token=None):
        """A client configured with the installation settings (version, base URL, app)."""
        params = self.env["ir.config_parameter"].sudo()
        return GraphClient(
            access_token,
            version=params.get_param(PARAM_GRAPH_VERSION) or DEFAULT_GRAPH_VERSION,
            base_url=params.get_param(PARAM_GRAPH_BASE_URL) or DEFAULT_GRAPH_BASE_URL,
            app_id=params.get_param(PARAM_APP_ID) or None,
            app_secret=self.env["wac.vault"]._app_secret() or None,
            # A single number: Odoo's test harness (and some proxies) reject (connect, read) tuples.
            timeout=float(params.get_param(PARAM_PREFIX + "graph_timeout") or 20),
        )

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_test_connection(self):
        """Ask Meta for the number's details; store the outcome and show it."""
        self.ensure_one()
        if not self.phone_number_id:
            raise UserError(self.env._(
                "Fill in the Phone Number ID first (WhatsApp Manager › Account tools › Phone "
                "numbers), or connect the number with Embedded Signup."))
        try:
            info = self._wac_client().get_phone_number(self.phone_number_id)
        except wa_errors.WaCloudError as error:
            message = self._wac_record_error(error)
            return self._wac_notify(message, "danger")
        vals = {
            "last_check_on": fields.Datetime.now(),
            "last_check_ok": True,
            "last_error": False,
            "verified_name": info.get("verified_name"),
            "quality_rating": info.get("quality_rating")
            if info.get("quality_rating") in dict(QUALITY_LEVELS) else "UNKNOWN",
            "is_on_biz_app": bool(info.get("is_on_biz_app")),
        }
        if info.get("display_phone_number") and not self.display_phone_number:
            vals["display_phone_number"] = info["display_phone_number"]
        if self.state in ("draft", "needs_reauth", "error"):
            vals.update(state="connected", state_reason=False)
        self.write(vals)
        return self._wac_notify(self.env._(
            "Connected to %(name)s (%(number)s), quality %(quality)s.",
            name=self.verified_name or "?", number=self.display_phone_number or "?",
            quality=dict(self._fields["quality_rating"]._description_selection(self.env)).get(
                self.quality_rating)), "success")

    def action_wac_embedded_signup(self):
        """Open Meta's Embedded Signup for this company (also to reconnect)."""
        self.ensure_one()
        return {"type": "ir.actions.act_url", "target": "self",
                "url": "/whatsapp_coexistence/onboarding/%d" % self.id}

    def action_wac_disconnect(self):
        """Stop using the number from Odoo: unsubscribe the app, forget the token.

        The number keeps working in the WhatsApp Business App. Meta's side (removing the
        partner from the WABA) stays with the business, in WhatsApp Manager.
        """
        self.ensure_one()
        self.check_access("write")
        note = self.env._("Disconnected from Odoo by %s.", self.env.user.name)
        if self.sudo().access_token_enc and self.waba_id:
            try:
                self._wac_client().unsubscribe_app(self.waba_id)
            except wa_errors.WaCloudError as error:
                note += " " + self.env._("Meta did not confirm the unsubscription: %s", error)
        self.env["wac.onboarding"].sudo().create({
            "company_id": self.company_id.id, "account_id": self.id, "user_id": self.env.uid,
            "state": "disconnected", "waba_id": self.waba_id,
            "phone_number_id": self.phone_number_id, "steps": note,
            "finished_at": fields.Datetime.now()})
        self.env["wac.vault"]._forget_account_token(self)
        self.write({"state": "disconnected", "state_reason": note, "last_check_ok": False})
        self.message_post(body=note, subtype_xmlid="mail.mt_note")
        self.env["wac.audit.log"]._wac_log(self, "disconnect", self.env._("Disconnect"),
                                           note=note)
        return True

    def _wac_record_error(self, error):
        """Store a Meta error on the account (sanitized) and return what to tell the user."""
        message = self._wac_error_advice(error)
        vals = {
            "last_check_on": fields.Datetime.now(),
            "last_check_ok": False,
            "last_error": message,
        }
        if isinstance(error, wa_errors.AuthError):
            vals.update(state="needs_reauth", state_reason=str(error))
        self.write(vals)
        return message

    def _wac_error_advice(self, error):
        """Translate a Meta error into a sentence that says what to do."""
        if isinstance(error, wa_errors.AuthError):
            advice = self.env._(
                "Meta rejected the access token: it expired or was revoked. Generate a new "
                "System User token in Meta Business Settings and paste it in the account.")
        elif isinstance(error, wa_errors.TransportError):
            advice = self.env._(
                "Meta could not be reached. Check the server's internet access and the Graph "
                "base URL in the settings, then try again.")
        elif isinstance(error, wa_errors.TenantBlockingError):
            advice = self.env._(
                "Meta refuses this number for the token's permissions or the account's status. "
                "Check in WhatsApp Manager that the app still has access to the WABA.")
        elif isinstance(error, wa_errors.RetryableError):
            advice = self.env._(
                "Meta is busy or temporarily unavailable; try again in a few minutes.")
        elif error.code == 100:
            advice = self.env._(
                "Meta does not know this Phone Number ID for this token. Copy it again from "
                "WhatsApp Manager › Account tools › Phone numbers.")
        else:
            advice = self.env._("Meta refused the request.")
        return "%s (%s)" % (advice, error)

    def _wac_notify(self, message, kind):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("WhatsApp"),
                "message": message,
                "type": kind,
                "sticky": kind == "danger",
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    # ------------------------------------------------------------
    # DEMO
    # ------------------------------------------------------------

    @api.model
    def _wac_demo_sandbox(self, base_url, app_id, app_secret, tokens):
        """Point the installation at a local fake Graph server (demo data only)."""
        params = self.env["ir.config_parameter"].sudo()
        params.set_param(PARAM_GRAPH_BASE_URL, base_url)
        params.set_param(PARAM_APP_ID, app_id)
        params.set_param(PARAM_ES_CONFIG_ID, "sandbox")
        self.env["wac.vault"]._store_app_secret(app_secret)
        for account_id, token in tokens.items():
            self.browse(account_id)._wac_set_token(token)

    # ------------------------------------------------------------
    # WEBHOOK EFFECTS
    # ------------------------------------------------------------

    def _wac_apply_account_update(self, update):
        """Apply an ``account_update`` lifecycle event; return a summary."""
        self.ensure_one()
        event = update.event or "?"
        reason = " / ".join(p for p in (update.reason, update.initiated_by) if p) or event
        if update.is_disconnect:
            self._wac_pause(self.env._("Disconnected by Meta: %s", reason),
                            state="disconnected", state_reason=reason)
        elif update.is_offboarded:
            self._wac_pause(self.env._(
                "Offboarded (the phone changed or re-registered); Meta reconnects it "
                "automatically within minutes."), state="offboarded", state_reason=event)
        elif update.is_reconnected:
            vals = {"state": "connected", "state_reason": False}
            if self.state == "offboarded":
                vals.update(automation_paused=False, automation_pause_reason=False)
            self._wac_write_changes(vals)
        self.message_post(body=self.env._("Meta account update: %(event)s (%(reason)s).",
                                          event=event, reason=reason),
                          subtype_xmlid="mail.mt_note")
        return "%s: %s" % (event, self.state)

    def _wac_pause(self, reason, **vals):
        """Stop this company's automation and tell its WhatsApp managers (once: not again
        when it is already paused for the same reason, as by a redelivered webhook)."""
        self.ensure_one()
        if not self._wac_write_changes(
                dict(vals, automation_paused=True, automation_pause_reason=reason)):
            return
        for user in self._wac_managers():
            self.activity_schedule(
                "mail.mail_activity_data_todo", user_id=user.id,
                summary=self.env._("WhatsApp automation paused"), note=reason)

    def _wac_write_changes(self, vals):
        """Write the values of ``vals`` that change this account, its row locked first; return
        them (empty: nothing written, not even ``write_date``).

        For the jobs that change the account while others of the same account run (webhook
        events, sends): one that meets another's write fails at the lock, quietly, and is
        retried on a newer snapshot (``lock_rows``). At the ORM's flush, the same conflict
        logs an ERROR with the query, once per replay of the job's batch.
        """
        self.ensure_one()
        changed = {
            name: value for name, value in vals.items()
            if self._fields[name].convert_to_cache(value, self)
            != self._fields[name].convert_to_cache(self[name], self)}
        if changed:
            lock_rows(self.env.cr, self._table, self.ids)
            self.write(changed)
        return changed

    def _wac_managers(self):
        group = self.env.ref("whatsapp_coexistence.whatsapp_coexistence_group_manager")
        return group.users.filtered(
            lambda u: self.company_id in u.company_ids and not u.share and u.active
            and u.id != self.env.ref("base.user_root").id)

    def _wac_log_meta_error(self, error):
        """An out-of-band error from Meta (``value.errors``): keep it visible on the account.

        The last error wins, and one written by another job at the same moment is as recent:
        losing that race skips this write (the event's summary keeps the code) instead of
        retrying the whole event over the account row.
        """
        self.ensure_one()
        info = webhook.error_info([error])
        text = wa_errors.sanitize("[%s] %s" % (info.code, info.details or info.title))
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    "UPDATE wac_account SET last_error = %s WHERE id = %s"
                    " AND last_error IS DISTINCT FROM %s", [text, self.id, text],
                    log_exceptions=False)
        except CONCURRENCY_ERRORS:
            _logger.debug("Last error of %s written by another job meanwhile.", self.display_name)
        self.invalidate_recordset(["last_error"])

    # ------------------------------------------------------------
    # TEMPLATES (kept by wac.template)
    # ------------------------------------------------------------

    def action_sync_templates(self):
        """The form's *Sync templates* button (the sync lives in ``wac.template``)."""
        return self.env["wac.template"]._wac_sync_for_user(self)

    def action_create_appointment_templates(self):
        """The form's *Create appointment templates* button (see ``wac.template``)."""
        return self.env["wac.template"]._wac_create_library(self)
