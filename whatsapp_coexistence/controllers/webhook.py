import logging

from werkzeug.exceptions import Forbidden

from odoo import SUPERUSER_ID, http
from odoo.http import request

from ..const import PARAM_VERIFY_TOKEN, WEBHOOK_ROUTE
from ..tools.wa_cloud import signature

_logger = logging.getLogger(__name__)

# Meta sends up to 3 MB per webhook (reference §1.2); refuse well above that, before reading.
MAX_BODY_BYTES = 8 * 1024 * 1024


class WhatsAppCoexistenceWebhook(http.Controller):
    """Meta's webhook for every company of the installation (one Meta app, one stream).

    The controller only authenticates and stores; ``wac.webhook.delivery`` does the rest
    asynchronously, so Meta always gets its 200 within milliseconds and never retries because of
    a business error.
    """

    _webhook_url = WEBHOOK_ROUTE

    @http.route(_webhook_url, type="http", methods=["GET"], auth="public", csrf=False,
                save_session=False)
    def verify(self, **params):
        """Answer Meta's subscription handshake with ``hub.challenge`` as plain text."""
        expected = request.env["ir.config_parameter"].sudo().get_param(PARAM_VERIFY_TOKEN)
        if params.get("hub.mode") != "subscribe" or not signature.verify_token_matches(
                params.get("hub.verify_token") or "", expected or ""):
            _logger.warning("WhatsApp webhook verification refused (mode or token mismatch).")
            raise Forbidden()
        return request.make_response(
            params.get("hub.challenge") or "", headers=[("Content-Type", "text/plain")])

    # auth="none": Meta is authenticated by the signature, not as Odoo's public user, whose
    # lookup (``env.ref`` and its ``exists()`` query) was a tenth of this route's cost. Such
    # routes default to a read-only cursor (a replica when one is configured): this one writes.
    @http.route(_webhook_url, type="http", methods=["POST"], auth="none", readonly=False,
                csrf=False, save_session=False)
    def receive(self):
        """Check size, signature and JSON (413/403/400), store the delivery and answer 200
        (503 while the App Secret cannot be decrypted)."""
        httprequest = request.httprequest
        deliveries = request.env(user=SUPERUSER_ID)["wac.webhook.delivery"]
        remote_addr = httprequest.remote_addr
        length = httprequest.content_length
        if length is not None and length > MAX_BODY_BYTES:
            deliveries._wac_reject(remote_addr, length, "too_large")
            return request.make_json_response({"error": "payload too large"}, status=413)
        # Cached: after a serialization failure Odoo replays the whole request
        # (odoo.service.model.retrying), and a second read of the stream would give 0 bytes.
        raw = httprequest.get_data()
        if len(raw) > MAX_BODY_BYTES:
            deliveries._wac_reject(remote_addr, len(raw), "too_large")
            return request.make_json_response({"error": "payload too large"}, status=413)
        status, reason = deliveries._wac_ingest(
            raw, httprequest.headers.get("X-Hub-Signature-256"), remote_addr)
        return request.make_json_response({"status": reason}, status=status)
