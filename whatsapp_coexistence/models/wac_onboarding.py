import json
import logging

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools.wa_cloud import errors as wa_errors

_logger = logging.getLogger(__name__)

ONBOARDING_STATES = [
    ("started", "Started"),
    ("connected", "Connected"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
    ("disconnected", "Disconnected"),
]
# Meta's session events (reference §3.2) that end the flow successfully.
FINISH_EVENTS = {
    "FINISH", "FINISH_ONLY_WABA", "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
    "FINISH_OBO_MIGRATION", "FINISH_GRANT_ONLY_API_ACCESS",
}
COEXISTENCE_EVENT = "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING"


class WacOnboarding(models.Model):
    """One Embedded Signup attempt, or a disconnection: who connected what, and when.

    The server side of the flow (reference §3.3 and §3.4), in Meta's order: exchange the code
    (it lives 30 seconds, so first and without retry), find the phone number when Meta only
    returned the WABA, subscribe the app to the WABA, *skip* ``/register`` for a coexistence
    number (it is already registered in the Business App), then request the contacts and the
    history sync, once each. Every step is written down, so a failed attempt says where it
    stopped.
    """

    _name = "wac.onboarding"
    _description = "WhatsApp Coexistence onboarding"
    _order = "id desc"
    _rec_name = "account_id"
    _check_company_auto = True

    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    account_id = fields.Many2one("wac.account", required=True, ondelete="cascade", index=True,
                                 readonly=True, check_company=True)
    user_id = fields.Many2one("res.users", "By", required=True, readonly=True,
                              default=lambda self: self.env.user)
    state = fields.Selection(ONBOARDING_STATES, default="started", required=True, readonly=True)
    finish_event = fields.Char("Meta event", readonly=True)
    coexistence = fields.Boolean(readonly=True)
    waba_id = fields.Char("WABA ID", readonly=True)
    phone_number_id = fields.Char(readonly=True)
    business_id = fields.Char("Business portfolio ID", readonly=True)
    contacts_request_id = fields.Char("Contacts sync request", readonly=True)
    history_request_id = fields.Char("History sync request", readonly=True)
    steps = fields.Text(readonly=True)
    error = fields.Text(readonly=True)
    finished_at = fields.Datetime(readonly=True)

    # ------------------------------------------------------------
    # FLOW
    # ------------------------------------------------------------

    @api.model
    def _wac_start(self, account):
        """Record that a manager opened the Embedded Signup page for ``account``."""
        account.check_access("write")
        return self.sudo().create({"company_id": account.company_id.id,
                                   "account_id": account.id, "user_id": self.env.uid})

    def _wac_finish(self, code, session):
        """Complete the flow with the code and the session info that the browser received.

        :param str code: the exchangeable code of ``FB.login`` (30 s TTL)
        :param dict session: ``data`` and ``event`` of Meta's ``WA_EMBEDDED_SIGNUP`` message
        :return: ``(ok, message)`` for the page
        """
        self.ensure_one()
        account = self.account_id
        account.check_access("write")
        # The checks above ran as the manager; the flow itself stores secrets and audit rows.
        attempt = self.sudo()
        data = session.get("data") or {}
        event = session.get("event") or ""
        if attempt.state != "started":
            return False, self.env._("This signup was already completed. Start a new one.")
        if event and event not in FINISH_EVENTS:
            attempt._wac_stop("cancelled", self.env._(
                "Meta's window was closed at step %(step)s: %(error)s",
                step=data.get("current_step") or "?",
                error=data.get("error_message") or self.env._("no error reported")))
            return False, attempt.error
        attempt.write({"finish_event": event, "coexistence": event == COEXISTENCE_EVENT,
                       "waba_id": data.get("waba_id") or account.waba_id,
                       "phone_number_id": data.get("phone_number_id"),
                       "business_id": data.get("business_id")})
        try:
            attempt._wac_run(account.sudo(), code)
        except wa_errors.WaCloudError as error:
            attempt._wac_stop("failed", account._wac_error_advice(error))
            return False, attempt.error
        except UserError as error:
            attempt._wac_stop("failed", str(error))
            return False, attempt.error
        return True, self.env._("%(number)s is connected to %(company)s.",
                                number=account.display_phone_number or account.phone_number_id,
                                company=account.company_id.name)

    def _wac_run(self, account, code):
        """Finish the signup of ``account`` with Meta's ``code``: token, number, webhooks,
        and for a coexistence number the contacts and history syncs; each step is logged.

        :raises WaCloudError: when Meta refuses a step
        :raises UserError: when Meta's answer lacks what the next step needs
        """
        if not code:
            raise UserError(self.env._("Meta did not hand over a code. Start the signup again."))
        if not self.waba_id:
            raise UserError(self.env._(
                "Meta did not say which WhatsApp Business Account was chosen. Start again and "
                "finish every step of Meta's window."))
        # 1. The code expires 30 seconds after the popup closed: exchange it first, no retry.
        token = account._wac_graph_client().exchange_code(code)
        self._wac_step("code exchanged for a business token")
        client = account._wac_graph_client(access_token=token)
        # 2. Coexistence completions often carry only the WABA id (reference §3.2).
        if not self.phone_number_id:
            self._wac_pick_phone_number(account, client)
        info = client.get_phone_number(self.phone_number_id)
        self.coexistence = self.coexistence or bool(info.get("is_on_biz_app"))
        # 3. Webhooks only arrive once the app is subscribed to the customer's WABA.
        client.subscribe_app(self.waba_id)
        self._wac_step("app subscribed to the WABA's webhooks")
        account.write({
            "waba_id": self.waba_id, "phone_number_id": self.phone_number_id,
            "business_id": self.business_id or account.business_id,
            "display_phone_number": info.get("display_phone_number")
            or account.display_phone_number,
            "verified_name": info.get("verified_name"),
            "quality_rating": info.get("quality_rating") or "UNKNOWN",
            "is_on_biz_app": bool(info.get("is_on_biz_app")),
            "state": "connected", "state_reason": False, "last_check_ok": True,
            "last_check_on": fields.Datetime.now(), "last_error": False,
            "onboarded_on": fields.Datetime.now(), "onboarded_by": self.user_id.id,
        })
        account.with_user(self.user_id)._wac_set_token(token)
        if self.coexistence:
            self._wac_request_app_data(account, client)
        self.write({"state": "connected", "finished_at": fields.Datetime.now()})
        account.message_post(body=self.env._(
            "Connected with Embedded Signup by %(user)s: WABA %(waba)s, number %(number)s%(coex)s.",
            user=self.user_id.name, waba=self.waba_id, number=account.display_phone_number,
            coex=self.env._(" (coexistence with the Business App)") if self.coexistence else ""),
            subtype_xmlid="mail.mt_note")

    def _wac_pick_phone_number(self, account, client):
        """The WABA's number that the account names (by its digits), else its first one."""
        numbers = client.list_phone_numbers(self.waba_id)
        if not numbers:
            raise UserError(self.env._("This WABA has no phone number yet."))
        wanted = account.display_phone_number and "".join(
            c for c in account.display_phone_number if c.isdigit())
        match = next((n for n in numbers if wanted and "".join(
            c for c in n.get("display_phone_number", "") if c.isdigit()) == wanted), None)
        self.phone_number_id = (match or numbers[0])["id"]
        self._wac_step("phone number %s found in the WABA" % self.phone_number_id)

    def _wac_request_app_data(self, account, client):
        """4. Coexistence: the number is registered in the Business App, so no /register.
        Contacts first, then history, within 24 hours and once each (reference §3.4)."""
        self._wac_step("coexistence number: registration skipped")
        self.contacts_request_id = client.request_smb_app_data(
            self.phone_number_id, "smb_app_state_sync")
        self._wac_step("contacts sync requested (%s)" % self.contacts_request_id)
        self.history_request_id = client.request_smb_app_data(self.phone_number_id, "history")
        self._wac_step("history sync requested (%s)" % self.history_request_id)
        account.history_state = "requested"

    def _wac_step(self, text):
        self.steps = "%s%s %s\n" % (self.steps or "", fields.Datetime.now(), text)

    def _wac_stop(self, state, error):
        self.write({"state": state, "error": error, "finished_at": fields.Datetime.now()})
        _logger.info("WhatsApp onboarding %d of %s: %s", self.id, self.company_id.name, state)
        self.account_id.message_post(
            body=self.env._("Embedded Signup by %(user)s ended: %(error)s",
                            user=self.user_id.name, error=error),
            subtype_xmlid="mail.mt_note")

    # ------------------------------------------------------------
    # PAGE DATA
    # ------------------------------------------------------------

    def _wac_page_values(self):
        """What the onboarding page needs: public ids only, never a secret."""
        self.ensure_one()
        params = self.env["ir.config_parameter"].sudo()
        base_url = params.get_param("whatsapp_coexistence.graph_base_url") or ""
        config = json.dumps({
            "onboarding_id": self.id,
            "app_id": params.get_param("whatsapp_coexistence.app_id") or "",
            "config_id": params.get_param("whatsapp_coexistence.es_config_id") or "",
            "graph_version": params.get_param("whatsapp_coexistence.graph_version") or "v25.0",
        })
        return {
            "onboarding": self,
            "account": self.account_id,
            # JSON inside a <script> element: not HTML-escaped, but "</" cannot close it.
            "config": Markup(config.replace("</", "<\\/")),
            "sandbox": not base_url.startswith("https://graph.facebook.com"),
            "graph_base_url": base_url.rstrip("/"),
        }
