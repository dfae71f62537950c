import secrets

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..const import (
    DEFAULT_GRAPH_BASE_URL,
    DEFAULT_GRAPH_VERSION,
    PARAM_APP_SECRET,
    PARAM_VERIFY_TOKEN,
    WEBHOOK_ROUTE,
)
from .wac_audit_log import SECRET_REPLACED, SECRET_SET

# Installation settings whose changes are audited (the App Secret separately, as a secret).
_AUDITED_PARAMS = ["wac_app_id", "wac_es_config_id", "wac_graph_version", "wac_graph_base_url",
                   "wac_kill_switch"]


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    wac_app_id = fields.Char("Meta App ID", config_parameter="whatsapp_coexistence.app_id")
    wac_app_secret = fields.Char(
        "App Secret", help="Encrypted on save and never shown again. Leave empty to keep it.")
    wac_app_secret_info = fields.Char(compute="_compute_wac_app_secret_info")
    wac_es_config_id = fields.Char(
        "Embedded Signup configuration ID", config_parameter="whatsapp_coexistence.es_config_id")
    wac_verify_token = fields.Char(
        "Webhook verify token", config_parameter="whatsapp_coexistence.verify_token",
        readonly=True)
    wac_graph_version = fields.Char(
        "Graph API version", config_parameter="whatsapp_coexistence.graph_version",
        default=DEFAULT_GRAPH_VERSION)
    wac_graph_base_url = fields.Char(
        "Graph base URL", config_parameter="whatsapp_coexistence.graph_base_url",
        default=DEFAULT_GRAPH_BASE_URL,
        help="Change it only to use a sandbox such as the fake Graph server shipped with the "
        "addon.")
    wac_kill_switch = fields.Boolean(
        "Stop all automated WhatsApp messages", config_parameter="whatsapp_coexistence.kill_switch")
    wac_callback_url = fields.Char("Webhook callback URL", compute="_compute_wac_callback_url")
    wac_account_id = fields.Many2one(
        "wac.account", compute="_compute_wac_account_id", string="Account of this company")

    # Settings are "new" records: a computed field is only filled in by the form's onchange
    # when it depends on something, hence the dependency on company_id.
    @api.depends("company_id")
    def _compute_wac_app_secret_info(self):
        ciphertext = self.env["ir.config_parameter"].sudo().get_param(PARAM_APP_SECRET)
        self.wac_app_secret_info = (
            self.env._("Set (encrypted). Type a new one to replace it.") if ciphertext
            else self.env._("Not set: every webhook is refused."))

    @api.depends("company_id")
    def _compute_wac_callback_url(self):
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        self.wac_callback_url = base.rstrip("/") + WEBHOOK_ROUTE

    @api.depends("company_id")
    def _compute_wac_account_id(self):
        for settings in self:
            settings.wac_account_id = settings.company_id.wa_account_id

    @api.constrains("wac_graph_base_url", "wac_graph_version")
    def _check_wac_graph(self):
        for settings in self:
            url = settings.wac_graph_base_url or ""
            if url and not url.startswith(("https://", "http://127.", "http://localhost")):
                raise ValidationError(self.env._(
                    "The Graph base URL must use https (plain http is accepted for a local "
                    "sandbox only)."))
            version = settings.wac_graph_version or ""
            if version and not (version.startswith("v") and version[1:].replace(".", "").isdigit()):
                raise ValidationError(self.env._(
                    "The Graph API version looks like v25.0."))

    def set_values(self):
        params = self.env["ir.config_parameter"].sudo()
        before = {name: params.get_param(self._fields[name].config_parameter)
                  for name in _AUDITED_PARAMS}
        res = super().set_values()
        for name, old in before.items():
            new = params.get_param(self._fields[name].config_parameter)
            if (old or False) != (new or False):
                self._wac_audit(self._fields[name].string, old, new)
        if self.wac_app_secret:
            had_secret = bool(params.get_param(PARAM_APP_SECRET))
            self.env["wac.vault"]._store_app_secret(self.wac_app_secret.strip())
            self.wac_app_secret = False
            self._wac_audit(self._fields["wac_app_secret"].string,
                            SECRET_SET if had_secret else False,
                            SECRET_REPLACED if had_secret else SECRET_SET)
        return res

    def _wac_audit(self, what, old, new):
        """An installation setting changed: an audit entry without company (admins only)."""
        self.env["wac.audit.log"]._wac_log(None, "change", what, old=old, new=new,
                                           company=False)

    def action_wac_regenerate_verify_token(self):
        """Generate a new webhook verify token; Meta must then be given the new one."""
        self.env["ir.config_parameter"].sudo().set_param(
            PARAM_VERIFY_TOKEN, secrets.token_urlsafe(32))
        self._wac_audit(self._fields["wac_verify_token"].string, SECRET_SET, SECRET_REPLACED)
        return {"type": "ir.actions.client", "tag": "reload"}

    def action_wac_open_account(self):
        """Open (creating it if needed) the WhatsApp account of the current company."""
        account = self.env.company.wa_account_id or self.env["wac.account"].create(
            {"company_id": self.env.company.id})
        return {
            "type": "ir.actions.act_window",
            "res_model": "wac.account",
            "res_id": account.id,
            "view_mode": "form",
        }
