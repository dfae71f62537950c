from werkzeug.exceptions import NotFound

from odoo import http
from odoo.exceptions import AccessError
from odoo.http import request


class WhatsAppCoexistenceOnboarding(http.Controller):
    """Embedded Signup: a start page per company and the callback that finishes the flow."""

    _start_url = "/whatsapp_coexistence/onboarding/<int:account_id>"
    _finish_url = "/whatsapp_coexistence/onboarding/finish"

    @http.route(_start_url, type="http", auth="user", methods=["GET"])
    def start(self, account_id):
        """Open Meta's Embedded Signup for the account (WhatsApp managers of its company)."""
        account = request.env["wac.account"].browse(account_id).exists()
        if not account:
            raise NotFound()
        try:
            onboarding = request.env["wac.onboarding"]._wac_start(account)
        except AccessError:
            raise NotFound() from None
        return request.render("whatsapp_coexistence.onboarding_page",
                              onboarding._wac_page_values())

    @http.route(_finish_url, type="json", auth="user", methods=["POST"])
    def finish(self, onboarding_id, code=None, session=None):
        """Receive the code and Meta's session info from the page; answer ``{ok, message}``."""
        onboarding = request.env["wac.onboarding"].sudo().browse(int(onboarding_id)).exists()
        if not onboarding or onboarding.user_id != request.env.user:
            raise NotFound()
        ok, message = onboarding.with_user(request.env.user)._wac_finish(code, session or {})
        return {"ok": ok, "message": message,
                "account_url": "/odoo/action-whatsapp_coexistence.wac_account_action/%d"
                % onboarding.account_id.id}
