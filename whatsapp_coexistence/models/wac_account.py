import json
import logging
import re

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..const import (
    ACCOUNT_STATES,
    AUTOMATION_MODES,
    DEFAULT_GRAPH_BASE_URL,
    DEFAULT_GRAPH_VERSION,
    PARAM_APP_ID,
    PARAM_APP_SECRET,
    PARAM_ES_CONFIG_ID,
    PARAM_GRAPH_BASE_URL,
    PARAM_GRAPH_VERSION,
    PARAM_PREFIX,
    QUALITY_LEVELS,
)
from ..tools.wa_cloud import errors as wa_errors
from ..tools.wa_cloud import phone as wa_phone
from ..tools.wa_cloud import template_library, webhook
from ..tools.wa_cloud.client import GraphClient
from ..tools.wa_cloud.template_params import fold, split_words
from ..tools.wa_cloud.vault import mask
from .wac_webhook_units import CONCURRENCY_ERRORS

_logger = logging.getLogger(__name__)

_GRAPH_ID = re.compile(r"^\d{5,32}$")


class WacAccount(models.Model):
    """The WhatsApp Business number of one company, in coexistence mode.

    Exactly one account per company. The access token is write-only: it is encrypted by
    ``wac.vault`` on write, and only :meth:`_wac_client` ever decrypts it.
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

    # Automation settings (appointments) -------------------------------------------------------
    reminder_offset_hours = fields.Float(
        "Reminder before (hours)", default=24.0,
        help="How long before an appointment its reminder goes.")
    rate_limit_mps = fields.Float(
        "Messages per second", default=20.0,
        help="Cap on this number's automated messages. Coexistence numbers have a fixed "
        "throughput of 20 messages per second at Meta (error 130429 beyond it).")
    recipient_spacing_s = fields.Float(
        "Seconds between two messages to one person", default=6.0,
        help="Meta refuses bursts to the same person (pair rate limit, error 131056).")
    recipient_daily_cap = fields.Integer(
        "Messages per person per day", default=10,
        help="Safety net: beyond it, automated messages to that person fail for a person to "
        "look at. 0 = no cap.")
    quiet_hours_start = fields.Float(
        "Quiet hours from", default=21.0,
        help="Reminders are not sent between these hours (company's local time); they wait "
        "for the end. Equal hours mean no quiet hours.")
    quiet_hours_end = fields.Float("Quiet hours until", default=8.0)
    reply_confirm_words = fields.Char(
        "Answers that confirm", required=True,
        default="1, SIM, S, CONFIRMAR, CONFIRMO, CONFIRMAR PRESENÇA, CONFIRMAR NOVO HORÁRIO, "
        "CONFIRM, YES",
        help="A reply made of one of these words (comma-separated; case, accents and "
        "punctuation ignored) confirms the appointment.")
    reply_cancel_words = fields.Char(
        "Answers that cancel", required=True,
        default="2, NÃO, NAO, N, CANCELAR, CANCELAR HORÁRIO, DESMARCAR, CANCEL, "
        "CANCEL APPOINTMENT, NO",
        help="A reply made of one of these words declines the appointment.")
    manual_message_text = fields.Text(
        "Manual message",
        help="Text of the WhatsApp (manual) button of appointments; empty means the default "
        "text in the company's language (Portuguese or English). Placeholders: {name}, "
        "{first_name}, {date}, {time}, {weekday}, {location}, {organizer}, {company}, {title}. "
        "*bold* and _italics_ work in WhatsApp.")
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

    # Coexistence synchronization --------------------------------------------------------------
    # The history sync's progress is read from its chunks (wac.history.chunk), never written
    # here: history jobs would otherwise all write this row, and each other's serialization
    # failures (account updates, errors, sends write it too).
    history_requested_on = fields.Datetime(readonly=True, copy=False)
    history_state = fields.Selection(
        [("none", "Not requested"), ("requested", "Requested"), ("importing", "Importing"),
         ("done", "Complete"), ("declined", "Declined by the business")],
        compute="_compute_history", inverse="_inverse_history_state", readonly=True)
    history_phase = fields.Integer(compute="_compute_history")
    history_progress = fields.Integer("History progress (%)", compute="_compute_history")
    history_chunks = fields.Integer("History chunks received", compute="_compute_history")
    history_messages = fields.Integer("History messages imported",
                                      compute="_compute_history")
    history_chunk_ids = fields.One2many("wac.history.chunk", "account_id", readonly=True)

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
    # SECRETS: the only places that touch the ciphertext
    # ------------------------------------------------------------

    def _wac_set_token(self, token):
        """Encrypt and store ``token``; log who replaced it, never the token itself."""
        self.ensure_one()
        hint = mask(token)
        self.env["wac.audit.log"]._wac_log(
            self, "change", self.env._("Access token"),
            old="set" if self.token_set_on else False,
            new="replaced" if self.token_set_on else "set")
        self.sudo().write({
            "access_token_enc": self.env["wac.vault"]._encrypt(token),
            "token_set_on": fields.Datetime.now(),
            "token_set_by": self.env.uid,
            "token_hint": hint,
        })
        self._message_log(body=self.env._("Access token replaced (ends with %s).", hint))

    def _wac_client(self):
        """Return a Graph client authenticated as this company's business.

        This is the only method that decrypts an access token.

        :raises UserError: when no token is stored yet
        """
        self.ensure_one()
        ciphertext = self.sudo().access_token_enc
        if not ciphertext:
            raise UserError(self.env._(
                "%(company)s has no WhatsApp access token yet. Connect the number with "
                "Embedded Signup or paste a System User token in the account.",
                company=self.company_id.name))
        return self._wac_graph_client(
            access_token=self.env["wac.vault"]._decrypt_cached(ciphertext))

    @api.model
    def _wac_graph_client(self, access_token=None):
        """A client configured with the installation settings (version, base URL, app)."""
        params = self.env["ir.config_parameter"].sudo()
        app_secret = self.env["wac.vault"]._decrypt_cached(params.get_param(PARAM_APP_SECRET))
        return GraphClient(
            access_token,
            version=params.get_param(PARAM_GRAPH_VERSION) or DEFAULT_GRAPH_VERSION,
            base_url=params.get_param(PARAM_GRAPH_BASE_URL) or DEFAULT_GRAPH_BASE_URL,
            app_id=params.get_param(PARAM_APP_ID) or None,
            app_secret=app_secret or None,
            # A single number: Odoo's test harness (and some proxies) reject (connect, read) tuples.
            timeout=float(params.get_param(PARAM_PREFIX + "graph_timeout") or 20),
        )

    @api.model
    def _wac_app_secret(self):
        """The decrypted App Secret, or ``False``; used to check webhook signatures."""
        params = self.env["ir.config_parameter"].sudo()
        return self.env["wac.vault"]._decrypt_cached(params.get_param(PARAM_APP_SECRET))

    @api.model
    def _wac_rotate_encryption(self):
        """Re-encrypt every stored secret under the current primary key.

        Put the new key first in ``wa_coexistence_keys`` (keep the old ones after it), run
        ``env["wac.account"]._wac_rotate_encryption()`` from ``odoo shell`` and commit; the old
        keys can then be removed. Returns the number of secrets re-encrypted.
        """
        vault = self.env["wac.vault"]
        count = 0
        for account in self.sudo().with_context(active_test=False).search(
                [("access_token_enc", "!=", False)]):
            account.access_token_enc = vault._rotate(account.access_token_enc)
            count += 1
        params = self.env["ir.config_parameter"].sudo()
        if params.get_param(PARAM_APP_SECRET):
            params.set_param(PARAM_APP_SECRET, vault._rotate(params.get_param(PARAM_APP_SECRET)))
            count += 1
        _logger.info("Re-encrypted %d WhatsApp Coexistence secret(s) under the primary key.", count)
        return count

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
        self.sudo().write({"access_token_enc": False, "token_set_on": False,
                           "token_set_by": False, "token_hint": False})
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
        params.set_param(PARAM_APP_SECRET, self.env["wac.vault"]._encrypt(app_secret))
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
            self.write(vals)
        self.message_post(body=self.env._("Meta account update: %(event)s (%(reason)s).",
                                          event=event, reason=reason),
                          subtype_xmlid="mail.mt_note")
        return "%s: %s" % (event, self.state)

    def _wac_pause(self, reason, **vals):
        """Stop this company's automation and tell its WhatsApp managers."""
        self.ensure_one()
        self.write(dict(vals, automation_paused=True, automation_pause_reason=reason))
        for user in self._wac_managers():
            self.activity_schedule(
                "mail.mail_activity_data_todo", user_id=user.id,
                summary=self.env._("WhatsApp automation paused"), note=reason)

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

    def _wac_apply_consent_keywords(self, contact, text):
        """Opt a contact out (or back in) when the whole message is one of the keywords."""
        self.ensure_one()
        word = fold(text)
        if not word:
            return
        if word in split_words(self.opt_out_keywords):
            contact._wac_set_opt_out(True, self.env._("keyword %s", text.strip()))
        elif word in split_words(self.opt_in_keywords):
            contact._wac_set_opt_out(False, self.env._("keyword %s", text.strip()))

    @api.depends("history_requested_on", "history_chunk_ids.phase",
                 "history_chunk_ids.progress", "history_chunk_ids.message_count",
                 "history_chunk_ids.declined")
    def _compute_history(self):
        stats = {account: rest for account, *rest in
                 self.env["wac.history.chunk"].sudo()._read_group(
                     [("account_id", "in", self.ids)], ["account_id"],
                     ["__count", "phase:max", "progress:max", "message_count:sum",
                      "declined:bool_or"])}
        for account in self:
            chunks, phase, progress, messages, declined = stats.get(
                account, (0, 0, 0, 0, False))
            if declined:
                state = "declined"
            elif chunks:
                state = "done" if progress >= 100 else "importing"
            else:
                state = "requested" if account.history_requested_on else "none"
            account.update({"history_state": state, "history_chunks": chunks,
                            "history_phase": phase or 0, "history_progress": progress or 0,
                            "history_messages": messages or 0})

    def _inverse_history_state(self):
        # Onboarding says when the sync was requested; the rest comes from the chunks.
        for account in self.filtered(lambda a: a.history_state == "requested"):
            account.history_requested_on = fields.Datetime.now()

    # ------------------------------------------------------------
    # APPOINTMENT AUTOMATION
    # ------------------------------------------------------------

    @api.constrains("quiet_hours_start", "quiet_hours_end", "rate_limit_mps",
                    "recipient_spacing_s", "reminder_offset_hours", "recipient_daily_cap")
    def _check_automation_settings(self):
        for account in self:
            if not (0 <= account.quiet_hours_start <= 24 and 0 <= account.quiet_hours_end <= 24):
                raise ValidationError(self.env._("Quiet hours are between 0 and 24."))
            if account.rate_limit_mps < 0 or account.recipient_spacing_s < 0 \
                    or account.reminder_offset_hours < 0 or account.recipient_daily_cap < 0:
                raise ValidationError(self.env._(
                    "Rates, spacings, offsets and caps cannot be negative."))

    @api.constrains("automation_mode", "pilot_allowlist")
    def _check_hello_world_mappings(self):
        Mapping = self.env["wac.template.mapping"].sudo()
        for account in self.filtered(
                lambda a: a.automation_mode == "enabled" and not a.pilot_allowlist):
            if Mapping.search_count([("template_id.account_id", "=", account.id),
                                     ("template_id.name", "=", "hello_world")]):
                raise ValidationError(self.env._(
                    "hello_world is Meta's sample template: a company that maps it can only "
                    "enable automation with a pilot allowlist. Map an appointment template "
                    "instead, or fill the allowlist."))

    @api.model
    def _wac_default_manual_text(self, lang=None):
        """The default text of the manual wa.me message, in Portuguese or English."""
        if (lang or "").startswith("pt"):
            return ("Olá, *{first_name}*! 👋\n\n"
                    "Seu horário com a equipe *{company}*:\n"
                    "📅 {date}\n"
                    "🕒 {time}\n"
                    "📍 {location}\n\n"
                    "Responda com o número da opção:\n"
                    "1 - Confirmar\n"
                    "2 - Cancelar")
        return ("Hello *{first_name}*! 👋\n\n"
                "Your appointment with *{company}*:\n"
                "📅 {date}\n"
                "🕒 {time}\n"
                "📍 {location}\n\n"
                "Reply with the number of your choice:\n"
                "1 - Confirm\n"
                "2 - Cancel")

    def action_load_default_manual_text(self):
        """Fill the manual message with the default text, in the company's language, to edit."""
        for account in self:
            account.manual_message_text = account._wac_default_manual_text(
                account.company_id.partner_id.lang)

    def action_sync_templates(self):
        """Bring this company's templates in line with its WABA (all pages)."""
        self.ensure_one()
        try:
            created, updated, deleted = self.env["wac.template"]._wac_sync_account(self)
        except wa_errors.WaCloudError as error:
            return self._wac_notify(self._wac_record_error(error), "danger")
        self.templates_synced_on = fields.Datetime.now()
        return self._wac_notify(self.env._(
            "Templates synced: %(created)s new, %(updated)s updated, %(deleted)s no longer at "
            "Meta.", created=created, updated=updated, deleted=deleted), "success")

    @api.model
    def _wac_cron_sync_templates(self):
        """Daily: sync the templates of every connected account; one failure stops nothing."""
        for account in self.search([("state", "=", "connected"), ("waba_id", "!=", False)]):
            try:
                self.env["wac.template"]._wac_sync_account(account)
                account.templates_synced_on = fields.Datetime.now()
            except (wa_errors.WaCloudError, UserError) as error:
                _logger.warning("Template sync of %s failed: %s", account.display_name, error)
                account.last_error = wa_errors.sanitize(str(error))

    def action_create_appointment_templates(self):
        """Submit the ready-made appointment templates (UTILITY; confirmation, reminder,
        reschedule, cancellation; pt_BR and en_US) to this company's WABA.

        Idempotent: a template this WABA already has (same name and language) is skipped.
        Each template's outcome is reported on its own line; their approval then arrives by
        webhook or sync, and approved ones are mapped automatically.
        """
        self.ensure_one()
        if not self.waba_id:
            raise UserError(self.env._("Fill in the WhatsApp Business Account ID first."))
        Template = self.env["wac.template"]
        try:
            Template._wac_sync_account(self)
        except wa_errors.WaCloudError as error:
            return self._wac_notify(self._wac_record_error(error), "danger")
        existing = {(t.name, t.language): t for t in self.template_ids}
        client = self._wac_client()
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
                answer = client.create_template(self.waba_id, payload)
            except wa_errors.WaCloudError as error:
                failed += 1
                lines.append(self.env._("%(name)s (%(lang)s): refused: %(error)s",
                                        name=key[0], lang=lang, error=str(error)))
                continue
            Template.create({
                "company_id": self.company_id.id, "account_id": self.id, "name": key[0],
                "language": lang, "meta_template_id": str(answer.get("id") or "") or False,
                "status": answer.get("status") if answer.get("status") in dict(
                    Template._fields["status"].selection) else "PENDING",
                "category": answer.get("category") or "UTILITY",
                "parameter_format": "NAMED",
                "components": json.dumps(payload["components"], ensure_ascii=False,
                                         sort_keys=True),
            })
            lines.append(self.env._("%(name)s (%(lang)s): submitted for approval",
                                    name=key[0], lang=lang))
        self.message_post(body=Markup("<p>%s</p><ul>%s</ul>") % (
            self.env._("Appointment templates"),
            Markup("").join(Markup("<li>%s</li>") % line for line in lines)),
            subtype_xmlid="mail.mt_note")
        return self._wac_notify("\n".join(lines), "warning" if failed else "success")
