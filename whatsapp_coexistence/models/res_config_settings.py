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
        res = super().set_values()
        if self.wac_app_secret:
            self.env["ir.config_parameter"].sudo().set_param(
                PARAM_APP_SECRET, self.env["wac.vault"]._encrypt(self.wac_app_secret.strip()))
            self.wac_app_secret = False
        return res

    def action_wac_regenerate_verify_token(self):
        """Generate a new webhook verify token; Meta must then be given the new one."""
        self.env["ir.config_parameter"].sudo().set_param(
            PARAM_VERIFY_TOKEN, secrets.token_urlsafe(32))
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
