"""The go-live checklist of a company: the seed's ten items, measured where they can be.

Each item is a method ``_wac_check_<key>(account)`` that returns what is still missing (an
empty list when the item is met). The support and compliance items cannot be measured: a
manager attests them (``wac.attestation``), which records who and when.
"""

from datetime import timedelta
from typing import NamedTuple

from markupsafe import Markup

from odoo import api, fields, models

from ..const import (
    CHANNEL_WHATSAPP,
    PARAM_APP_ID,
    PARAM_ES_CONFIG_ID,
)
from ..tools.wa_cloud.vault import VaultError
from .wac_template_mapping import MESSAGE_TYPES

# Coexistence numbers have a fixed throughput of 20 messages per second at Meta (130429 beyond).
MAX_MPS = 20.0
# A webhook this recent proves that Meta reaches us and that the signature checks out.
WEBHOOK_FRESHNESS = timedelta(days=7)

# (key, blocking): the order is the seed's.
READINESS_KEYS = [
    ("credentials", True),
    ("templates", True),
    ("webhook", True),
    ("coexistence", False),
    ("limits", True),
    ("audit", False),
    ("signup", True),
    ("feature_flag", True),
    ("support", True),
    ("compliance", True),
]


class ReadinessItem(NamedTuple):
    """One line of the checklist."""

    key: str
    ok: bool
    label: str
    missing: list
    blocking: bool
    links: list  # [(label, url)]
    attestation: object  # a wac.attestation record (possibly empty) for attested items


class WacReadiness(models.AbstractModel):
    """Computes the checklist of an account and enforces the go-live gate."""

    _name = "wac.readiness"
    _description = "WhatsApp go-live readiness"

    @api.model
    def _wac_labels(self):
        _ = self.env._
        return {
            "credentials": _("Credentials of this company"),
            "templates": _("Approved templates mapped for every message type"),
            "webhook": _("Signed status webhooks received"),
            "coexistence": _("Coexistence events: history and contacts sync"),
            "limits": _("Retry, backoff and rate limits set"),
            "audit": _("Delivery and failure log per message"),
            "signup": _("Embedded Signup done or token verified"),
            "feature_flag": _("Automation switch of this company usable"),
            "support": _("Support process (disconnect, reconnect, rotate the token)"),
            "compliance": _("Meta and WhatsApp policies complied with"),
        }

    @api.model
    def _wac_links(self):
        _ = self.env._
        docs = "https://developers.facebook.com/documentation/business-messaging/whatsapp/"
        return {
            "support": [
                (_("Reconnecting an offboarded number"),
                 docs + "embedded-signup/reconnect-offboarded-coexistence-clients/"),
                (_("Error codes"), docs + "support/error-codes/"),
            ],
            "compliance": [
                (_("WhatsApp Business Messaging Policy"),
                 "https://business.whatsapp.com/policy"),
                (_("Business verification"),
                 "https://www.facebook.com/business/help/2058515294227817"),
                (_("Display name guidelines"),
                 "https://www.facebook.com/business/help/757569725593362"),
                (_("Getting opt-in"), "https://business.whatsapp.com/policy#opt-in"),
            ],
        }

    @api.model
    def _wac_items(self, account):
        """The ten items of ``account``, in the seed's order.

        :rtype: list[ReadinessItem]
        """
        labels, links = self._wac_labels(), self._wac_links()
        attestations = self.env["wac.attestation"].sudo().search(
            [("account_id", "=", account.id)])
        items = []
        for key, blocking in READINESS_KEYS:
            attestation = attestations.filtered(lambda a, key=key: a.key == key)
            if key in ("support", "compliance"):
                missing = [] if attestation else [self.env._(
                    "A WhatsApp manager of the company attests it (button below).")]
            else:
                missing = getattr(self, "_wac_check_" + key)(account)
            items.append(ReadinessItem(key, not missing, labels[key], missing, blocking,
                                       links.get(key, []), attestation))
        return items

    @api.model
    def _wac_blocking_open(self, account):
        """The labels of the blocking items still open."""
        return [item.label for item in self._wac_items(account)
                if item.blocking and not item.ok]

    # ------------------------------------------------------------
    # MEASURED ITEMS: each returns the list of what is missing
    # ------------------------------------------------------------

    @api.model
    def _wac_check_credentials(self, account):
        params = self.env["ir.config_parameter"].sudo()
        _ = self.env._
        checks = [
            (params.get_param(PARAM_APP_ID) and params.get_param(PARAM_ES_CONFIG_ID),
             _("A system administrator sets the Meta App ID and the Embedded Signup "
               "configuration in Settings › WhatsApp Coexistence.")),
            self._wac_app_secret_check(),
            (self.env["wac.vault"]._key_source()[1] != "file",
             _("The encryption key is in Odoo's data directory: move it to the "
               "'wa_coexistence_keys' option of the config file or WA_COEXISTENCE_KEYS.")),
            (account.waba_id and account.phone_number_id,
             _("Fill in the WABA ID and the Phone Number ID, or use Embedded Signup.")),
            (account.token_set_on, _("No access token stored.")),
        ]
        return [hint for ok, hint in checks if not ok]

    @api.model
    def _wac_app_secret_check(self):
        """``(ok, hint)`` of the App Secret: set, and readable with the configured keys."""
        _ = self.env._
        try:
            readable = bool(self.env["wac.vault"]._app_secret())
        except VaultError:
            return (False, _(
                "The App Secret cannot be decrypted: the encryption keys changed since it was "
                "saved, so every webhook is answered 503 and Meta retries it for up to 7 days. "
                "Put the previous key back in 'wa_coexistence_keys' (after the new one), or "
                "enter the App Secret again in Settings › WhatsApp Coexistence."))
        return (readable, _("App Secret not set: every webhook is refused."))

    @api.model
    def _wac_check_templates(self, account):
        mappings = self.env["wac.template.mapping"].sudo().search([
            ("company_id", "=", account.company_id.id),
            ("template_id.status", "=", "APPROVED")])
        languages = set(mappings.mapped("language")) or {False}
        labels = dict(self.env["wac.template.mapping"]._fields["message_type"]
                      ._description_selection(self.env))
        missing = []
        for language in sorted(languages, key=str):
            mapped = set(mappings.filtered(lambda m, lg=language: m.language == lg)
                         .mapped("message_type"))
            for kind, _label in MESSAGE_TYPES:
                if kind not in mapped:
                    missing.append(self.env._(
                        "%(type)s (%(lang)s): no approved template mapped.",
                        type=labels[kind], lang=language or self.env._("any language")))
        return missing

    @api.model
    def _wac_check_webhook(self, account):
        since = fields.Datetime.now() - WEBHOOK_FRESHNESS
        # Events exist only for deliveries whose signature was valid (the controller refuses
        # the others before storing anything).
        if self.env["wac.webhook.event"].sudo().search_count([
                ("company_id", "=", account.company_id.id), ("received_at", ">=", since)],
                limit=1):
            return []
        return [self.env._("No signed webhook for this number in the last 7 days: check the "
                           "callback URL and the subscribed fields in Meta's App Dashboard.")]

    @api.model
    def _wac_check_coexistence(self, account):
        if account.history_state in ("requested", "importing", "done", "declined"):
            return []
        if account.last_check_ok and not account.is_on_biz_app:
            # Meta says the number is not shared with the Business App: there is no history
            # or address book to sync (smb_app_data answers 100 for such a number).
            return []
        return [self.env._("The history sync has not started yet (%(state)s): connect the "
                           "number with Embedded Signup, which requests the contacts and the "
                           "history.", state=account.history_state)]

    @api.model
    def _wac_check_limits(self, account):
        _ = self.env._
        checks = [
            (0 < account.rate_limit_mps <= MAX_MPS,
             _("Messages per second must be between 0 and 20 (Meta's coexistence limit).")),
            (account.recipient_spacing_s > 0,
             _("Set a spacing between two messages to one person (Meta error 131056).")),
            (account.recipient_daily_cap > 0, _("Set a daily cap per person.")),
            (self.env.ref("whatsapp_coexistence.queue_job_channel_whatsapp",
                          raise_if_not_found=False),
             _("The job channel %(channel)s is missing: update the addon.",
               channel=CHANNEL_WHATSAPP)),
        ]
        return [hint for ok, hint in checks if not ok]

    @api.model
    def _wac_check_audit(self, account):
        cron = self.env.ref("whatsapp_coexistence.ir_cron_wac_late_statuses",
                            raise_if_not_found=False)
        if cron and cron.sudo().active:
            return []
        return [self.env._("The scheduled action that attaches late delivery statuses to their "
                           "messages is archived: reactivate it in Settings › Technical.")]

    @api.model
    def _wac_check_signup(self, account):
        signed_up = self.env["wac.onboarding"].sudo().search_count(
            [("account_id", "=", account.id), ("state", "=", "connected")], limit=1)
        if signed_up or (account.state == "connected" and account.last_check_ok):
            return []
        return [self.env._("Connect with Meta, or paste a token and press Test connection.")]

    @api.model
    def _wac_check_feature_flag(self, account):
        missing = []
        if account.automation_paused:
            missing.append(self.env._("Automation is paused: %(reason)s",
                                      reason=account.automation_pause_reason or "?"))
        if self.env["wac.send"]._wac_kill_switch():
            missing.append(self.env._("The global kill switch is on (Settings)."))
        return missing

    # ------------------------------------------------------------
    # RENDERING
    # ------------------------------------------------------------

    @api.model
    def _wac_render(self, items):
        """The checklist as HTML: one line per item, every tag closed."""
        rows = Markup("").join(self._wac_render_item(item) for item in items)
        return Markup('<ul class="list-unstyled mb-0 o_wac_readiness">%s</ul>') % rows

    @api.model
    def _wac_render_item(self, item):
        icon = "fa-check-circle text-success" if item.ok else (
            "fa-times-circle text-danger" if item.blocking else
            "fa-exclamation-circle text-warning")
        details = Markup("").join(
            Markup('<div class="text-muted ms-4">%s</div>') % hint for hint in item.missing)
        if item.attestation:
            details += Markup('<div class="text-muted ms-4">%s</div>') % self.env._(
                "Attested by %(user)s on %(date)s",
                user=item.attestation.user_id.name,
                date=fields.Date.to_string(item.attestation.create_date))
        if item.links:
            details += Markup('<div class="ms-4">%s</div>') % Markup(" · ").join(
                Markup('<a href="%s" target="_blank" rel="noopener">%s</a>') % (url, label)
                for label, url in item.links)
        return Markup('<li class="mb-2" data-key="%s"><i class="fa %s me-2" role="img" '
                      'aria-hidden="true"></i><span>%s</span>%s</li>') % (
            item.key, icon, item.label, details)
