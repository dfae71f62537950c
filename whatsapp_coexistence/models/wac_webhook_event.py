import json
import logging

import psycopg2

from odoo import SUPERUSER_ID, api, fields, models

from odoo.addons.queue_job.exception import RetryableJobError

from ..tools.wa_cloud import webhook, webhook_stream
from ..tools.wa_cloud.errors import sanitize

_logger = logging.getLogger(__name__)

EVENT_STATES = [
    ("pending", "Pending"),
    ("done", "Done"),
    ("failed", "Failed"),
    ("unroutable", "Unroutable"),
    ("ignored", "Ignored"),
]

# Errors that say "try again": another worker committed the same contact or message first, or
# the database asked us to retry. A second attempt then finds the row and deduplicates.
TRANSIENT_DB_ERRORS = (
    psycopg2.errors.UniqueViolation,
    psycopg2.errors.SerializationFailure,
    psycopg2.errors.LockNotAvailable,
    psycopg2.errors.DeadlockDetected,
)


class WacWebhookEvent(models.Model):
    """One ``change`` of a webhook delivery, routed to the company it belongs to.

    Message-path fields route by ``metadata.phone_number_id``; ``account_update`` and template
    fields by WABA id. An event whose number or WABA no company owns stays *unroutable*, visible
    to administrators, and can be reprocessed once the company is connected: it never lands in
    another company.
    """

    _name = "wac.webhook.event"
    _description = "WhatsApp Coexistence webhook event"
    _order = "id desc"
    _rec_name = "field"

    delivery_id = fields.Many2one(
        "wac.webhook.delivery", required=True, ondelete="cascade", index=True, readonly=True)
    received_at = fields.Datetime(related="delivery_id.received_at", store=True)
    change_index = fields.Integer(readonly=True)
    company_id = fields.Many2one("res.company", index=True, readonly=True)
    account_id = fields.Many2one("wac.account", index=True, readonly=True)
    field = fields.Char(required=True, index=True, readonly=True)
    waba_id = fields.Char("WABA ID", readonly=True)
    phone_number_id = fields.Char(readonly=True, index=True)
    payload = fields.Text(
        readonly=True, help="The change's value, as Meta sent it. The messages of a history "
        "chunk stay in the delivery's raw body, where the import reads them: here a "
        "\"wac_history\" marker stands in their place.")
    state = fields.Selection(EVENT_STATES, default="pending", required=True, index=True,
                             readonly=True)
    summary = fields.Char(readonly=True)
    error = fields.Text(readonly=True)
    attempts = fields.Integer(readonly=True)
    processed_at = fields.Datetime(readonly=True)

    _sql_constraints = [
        ("change_uniq", "unique(delivery_id, change_index)", "A change is stored once."),
    ]

    # ------------------------------------------------------------
    # CREATION AND ROUTING
    # ------------------------------------------------------------

    @api.model
    def _wac_create_from_changes(self, delivery, changes):
        """Create one routed event per parsed change of ``delivery``."""
        vals_list = []
        for index, change in enumerate(changes):
            vals_list.append({
                "delivery_id": delivery.id,
                "change_index": index,
                "field": change.field or "?",
                "waba_id": change.waba_id,
                "phone_number_id": change.phone_number_id,
                "payload": json.dumps(change.value, ensure_ascii=False),
            })
        events = self.create(vals_list)
        events._wac_route()
        return events

    def _wac_route(self):
        """Find the account of each event, or mark it unroutable or ignored."""
        accounts = self.env["wac.account"].sudo().search([
            "|",
            ("phone_number_id", "in", [p for p in self.mapped("phone_number_id") if p]),
            ("waba_id", "in", [w for w in self.mapped("waba_id") if w]),
        ])
        by_phone = {a.phone_number_id: a for a in accounts if a.phone_number_id}
        by_waba = {a.waba_id: a for a in accounts if a.waba_id}
        for event in self:
            if event.field not in webhook.HANDLED_FIELDS:
                event.write({"state": "ignored", "summary": "Field not handled"})
                continue
            if event.phone_number_id or event.field in webhook.MESSAGE_PATH_FIELDS:
                account = by_phone.get(event.phone_number_id)
            else:
                account = by_waba.get(event.waba_id)
            if account:
                event.write({"account_id": account.id, "company_id": account.company_id.id,
                             "state": "pending"})
            else:
                event.write({"account_id": False, "company_id": False, "state": "unroutable",
                             "summary": "No company owns this number or WABA"})

    # ------------------------------------------------------------
    # PROCESSING
    # ------------------------------------------------------------

    def _wac_enqueue(self, eta=None, channel=None):
        for event in self.with_user(SUPERUSER_ID):
            if channel is None:
                channel = "root.whatsapp.history" if event.field == "history" else "root.whatsapp"
            event.with_delay(
                channel=channel, eta=eta, identity_key="wac-event-%d" % event.id,
                description="WhatsApp webhook event %s #%d" % (event.field, event.id),
            )._wac_job_process()

    def _wac_job_process(self):
        """queue_job entry point: process one event, retrying on transient database errors."""
        self.ensure_one()
        if self.state not in ("pending", "failed", "unroutable"):
            return "Nothing to do: event is %s" % self.state
        if self.state == "unroutable":
            self._wac_route()
            if self.state != "pending":
                return "Still unroutable"
        try:
            with self.env.cr.savepoint():
                self._wac_process()
        except TRANSIENT_DB_ERRORS as error:
            self.write({"attempts": self.attempts + 1, "error": sanitize(str(error))})
            raise RetryableJobError("Concurrent update, retrying", seconds=5) from error
        except Exception as error:  # job boundary: always end in a recorded state
            self._wac_record_failure(error)
        return self.summary

    def _wac_process_safely(self):
        """Process inline (inside the delivery's job); transient errors go to a job of their own."""
        for event in self:
            try:
                with self.env.cr.savepoint():
                    event._wac_process()
            except TRANSIENT_DB_ERRORS as error:
                event.write({"attempts": event.attempts + 1, "error": sanitize(str(error))})
                event._wac_enqueue()
            except Exception as error:  # job boundary: always end in a recorded state
                event._wac_record_failure(error)

    def _wac_record_failure(self, error):
        _logger.warning("WhatsApp webhook event %d (%s) failed: %s", self.id, self.field,
                        sanitize(repr(error)))
        self.write({"state": "failed", "attempts": self.attempts + 1,
                    "error": sanitize("%s: %s" % (type(error).__name__, error))})

    def _wac_process(self):
        """Apply the event to its company. Every handler is idempotent."""
        self.ensure_one()
        handler = getattr(self, "_wac_handle_%s" % self.field, None)
        if handler is None:
            self.write({"state": "ignored", "summary": "Field not handled"})
            return
        account = self.account_id.sudo().with_company(self.company_id)
        summary = handler(account, self._wac_value())
        self.write({"state": "done", "summary": summary, "error": False,
                    "attempts": self.attempts + 1, "processed_at": fields.Datetime.now()})
        self.delivery_id._wac_update_state()

    def _wac_value(self):
        """The change's value, decoded; a ``history`` array is left in the payload.

        Events stored before the delivery body was streamed hold their history chunk in the
        payload: :func:`webhook_stream.load_value` replaces it with a marker, and
        :meth:`_wac_handle_history` reads it from the payload as a stream.
        """
        payload = self.payload or "{}"
        if self.field == "history":
            return webhook_stream.load_value(lambda: webhook_stream.TextReader(payload))
        return json.loads(payload)

    def action_reprocess(self):
        """Route failed, pending and unroutable events again and process them in jobs."""
        events = self.filtered(lambda e: e.state in ("failed", "pending", "unroutable"))
        for event in events:
            self.env["wac.audit.log"]._wac_log(event, "reprocess", self.env._("Reprocess"),
                                               old=event.state)
        events.sudo().write({"state": "pending", "error": False})
        events.sudo()._wac_route()
        events.filtered(lambda e: e.state == "pending").sudo()._wac_enqueue()
        return True

    # ------------------------------------------------------------
    # HANDLERS: one per webhook field, each returns a short summary
    # ------------------------------------------------------------

    def _wac_handle_messages(self, account, value):
        Message = self.env["wac.message"].sudo()
        parts = []
        statuses = webhook.statuses(value)
        if statuses:
            Message._wac_ingest_statuses(account, statuses)
            parts.append("%d status(es)" % len(statuses))
        inbound = webhook.inbound_messages(value)
        if inbound:
            Message._wac_ingest_inbound(account, inbound)
            parts.append("%d inbound message(s)" % len(inbound))
        for error in value.get("errors") or []:
            account._wac_log_meta_error(error)
            parts.append("error %s" % error.get("code"))
        return ", ".join(parts) or "empty"

    def _wac_handle_smb_message_echoes(self, account, value):
        echoes = webhook.echoes(value)
        self.env["wac.message"].sudo()._wac_ingest_echoes(account, echoes)
        return "%d echo(es) from the Business App" % len(echoes)

    def _wac_handle_history(self, account, value):
        Message = self.env["wac.message"].sudo()
        media = webhook.history_media(value)
        if media:
            Message._wac_upgrade_placeholders(account, media)
            return "%d media asset(s)" % len(media)
        # The business number as Meta writes it in ``from`` (digits), not as the user typed it.
        business_number = (value.get("metadata") or {}).get("display_phone_number")
        # The chunk's messages are read one at a time from where they are stored: the
        # delivery body since the delivery job streams it, the payload for older events.
        ref = value.get(webhook_stream.HISTORY_REF) or {}
        if ref.get("source") == webhook_stream.SOURCE_BODY:
            items = webhook_stream.history_items(
                self.delivery_id._wac_open_body, change_index=self.change_index)
        elif ref.get("source") == webhook_stream.SOURCE_VALUE:
            payload = self.payload
            items = webhook_stream.history_items(lambda: webhook_stream.TextReader(payload))
        else:
            items = ()  # no history array
        return Message._wac_ingest_history(
            account, items, business_number or account.display_phone_number)

    def _wac_handle_smb_app_state_sync(self, account, value):
        items = webhook.state_sync(value)
        return self.env["wac.contact"].sudo()._wac_ingest_state_sync(account, items)

    def _wac_handle_account_update(self, account, value):
        return "; ".join(account._wac_apply_account_update(update)
                         for update in webhook.account_update(value))

    def _wac_handle_template_event(self, account, value):
        Template = self.env["wac.template"].sudo()
        return "; ".join(Template._wac_apply_event(account, event)
                         for event in webhook.template_event(self.field, value))

    _wac_handle_message_template_status_update = _wac_handle_template_event
    _wac_handle_message_template_quality_update = _wac_handle_template_event
    _wac_handle_template_category_update = _wac_handle_template_event

    def _wac_handle_user_preferences(self, account, value):
        prefs = webhook.user_preferences(value)
        return self.env["wac.contact"].sudo()._wac_apply_preferences(account, prefs)
