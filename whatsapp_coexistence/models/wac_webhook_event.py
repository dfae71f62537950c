import json
import logging
import random
from typing import NamedTuple

from odoo import SUPERUSER_ID, api, fields, models
from odoo.tools import SQL

from odoo.addons.queue_job.exception import RetryableJobError

from ..const import CHANNEL_HISTORY, CHANNEL_WEBHOOK, PRIORITY_WEBHOOK
from ..tools.wa_cloud import webhook, webhook_stream
from ..tools.wa_cloud.errors import sanitize
from .wac_webhook_delivery import STUCK_AFTER, no_live_job
from .wac_webhook_units import RETRY, Units, classify, describe

_logger = logging.getLogger(__name__)

EVENT_STATES = [
    ("pending", "Pending"),
    ("done", "Done"),
    ("partial", "Partly failed"),
    ("failed", "Failed"),
    ("unroutable", "Unroutable"),
    ("ignored", "Ignored"),
]
#: States a person (or the reprocess action) can send back to processing.
REPROCESSABLE_STATES = ("failed", "partial", "pending", "unroutable")

# History chunks of one sync share the same contacts: CHANNEL_HISTORY (capacity 1) imports them
# one after the other. It is a subchannel of CHANNEL_WHATSAPP, whose queue orders jobs by
# priority first: a chunk takes the next free slot before the waiting sends, and the
# deliveries (in CHANNEL_WEBHOOK, as many at once as its capacity) can delay it by that many
# jobs at most, never by their backlog.
HISTORY_PRIORITY = PRIORITY_WEBHOOK
# A conflict with another job is retried after about this many seconds times the try number,
# jittered so that the jobs that collided do not collide again.
RETRY_SECONDS = 5
# Unit failures listed in an event's error; the others are counted.
FAILURES_SHOWN = 20


class Route(NamedTuple):
    """What routes an event: its field and the ids of its metadata."""

    field: str
    phone_number_id: str
    waba_id: str

    @classmethod
    def of(cls, event):
        """The route of an event, or of its creation values."""
        return cls(event["field"], event["phone_number_id"], event["waba_id"])


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
    error = fields.Text(readonly=True, help="Why the event failed, or which of its messages, "
                        "statuses or contacts failed and why, each with what Meta sent.")
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
        """Create one routed event per parsed change of ``delivery``.

        Routed before the insert: a route written afterwards was a second pass over every
        row of the delivery (up to tens of thousands in one fuzzed delivery).
        """
        vals_list = []
        for index, change in enumerate(changes):
            vals_list.append({
                "delivery_id": delivery.id,
                # Given, not precomputed: the ORM would build a new record per row for it.
                "received_at": delivery.received_at,
                "change_index": index,
                "field": change.field or "?",
                "waba_id": change.waba_id,
                "phone_number_id": change.phone_number_id,
                "payload": json.dumps(change.value, ensure_ascii=False),
            })
        routes = self._wac_routes([Route.of(vals) for vals in vals_list])
        return self.create([dict(vals, **route) for vals, route in zip(vals_list, routes)])

    def _wac_route(self):
        """Find the account of each event, or mark it unroutable or ignored."""
        groups = {}
        routes = self._wac_routes([Route.of(event) for event in self])
        for event, route in zip(self, routes):
            key = tuple(sorted(route.items()))
            groups[key] = groups.get(key, self.browse()) | event
        for key, events in groups.items():
            events.write(dict(key))

    @api.model
    def _wac_routes(self, routes):
        """The routing values (account, company, state, summary) of each of ``routes``."""
        phones = {r.phone_number_id for r in routes if r.phone_number_id}
        accounts = self.env["wac.account"].sudo().search([
            "|", ("phone_number_id", "in", list(phones)),
            ("waba_id", "in", list({r.waba_id for r in routes if r.waba_id}))])
        by_phone = {a.phone_number_id: a for a in accounts if a.phone_number_id}
        by_waba = {a.waba_id: a for a in accounts if a.waba_id}
        # A number a company left: say so, rather than "nobody owns it".
        retired = self.env["wac.number.change"]._wac_retired(phones - set(by_phone))
        result = []
        for route in routes:
            if route.field not in webhook.HANDLED_FIELDS:
                result.append({"state": "ignored", "summary": "Field not handled"})
                continue
            if route.phone_number_id or route.field in webhook.MESSAGE_PATH_FIELDS:
                account = by_phone.get(route.phone_number_id)
            else:
                account = by_waba.get(route.waba_id)
            if account:
                result.append({"account_id": account.id, "company_id": account.company_id.id,
                               "state": "pending"})
                continue
            change = retired.get(route.phone_number_id)
            result.append({"account_id": False, "company_id": False, "state": "unroutable",
                           "summary": change._wac_unroutable_summary() if change
                           else "No company owns this number or WABA"})
        return result

    # ------------------------------------------------------------
    # PROCESSING
    # ------------------------------------------------------------

    def _wac_enqueue(self, eta=None):
        """Process each event in a job of its own, history in the history channel."""
        for event in self.with_user(SUPERUSER_ID):
            history = event.field == "history"
            event.with_delay(
                channel=CHANNEL_HISTORY if history else CHANNEL_WEBHOOK,
                priority=HISTORY_PRIORITY if history else PRIORITY_WEBHOOK, eta=eta,
                identity_key="wac-event-%d" % event.id,
                description="WhatsApp webhook event %s #%d" % (event.field, event.id),
            )._wac_job_process()

    def _wac_job_process(self):
        """queue_job entry point: process one event; a conflict with another job is retried.

        The job always ends with the event in a recorded state: processed, failed with its
        reason, or (a conflict) pending with its job postponed, until its last try.
        """
        self.ensure_one()
        if self.state not in REPROCESSABLE_STATES:
            return "Nothing to do: event is %s" % self.state
        if self.state == "unroutable":
            self._wac_route()
            if self.state != "pending":
                return "Still unroutable"
        error = self._wac_try_process()
        if error is None:
            return self.summary
        tries, max_tries = self._wac_job_tries()
        if max_tries and tries + 1 >= max_tries:
            self._wac_record_failure(error, tries=tries + 1)
            return self.summary
        # Another job wrote the same rows: quiet, its work is seen on the next try.
        _logger.debug("WhatsApp webhook event %d: %s; retrying.", self.id, describe(error))
        raise RetryableJobError(describe(error), seconds=self._wac_retry_delay(tries)) \
            from error

    def _wac_try_process(self):
        """Process this event in a savepoint of its own. A permanent error is recorded on
        the event; a conflict with another job's work (classified *retry*) is recorded
        nowhere and returned, for the caller to run the event again later.

        :returns: the conflict, or ``None`` when the event ended processed or failed
        """
        try:
            with self.env.cr.savepoint():
                self._wac_process()
        except Exception as error:  # job boundary: retried by the caller, or recorded
            if classify(error) != RETRY:
                self._wac_record_failure(error)
                return None
            return error
        return None

    def _wac_job_tries(self):
        """``(tries before this one, tries allowed)`` of the running job, ``(0, 0)`` outside a
        job."""
        uuid = self.env.context.get("job_uuid")
        if not uuid:
            return 0, 0
        self.env.cr.execute("SELECT retry, max_retries FROM queue_job WHERE uuid = %s", [uuid])
        row = self.env.cr.fetchone()
        return (row[0] or 0, row[1] or 0) if row else (0, 0)

    @api.model
    def _wac_retry_delay(self, tries):
        """Seconds before the next try: longer each time, jittered."""
        return round(RETRY_SECONDS * (tries + 1) * random.uniform(1.0, 2.0))

    def _wac_record_failure(self, error, tries=None):
        """Mark the event failed with the reason; ``tries``: the conflict outlasted them."""
        reason = describe(error)
        if tries:
            reason = self.env._("Gave up after %(tries)s tries: %(reason)s",
                                tries=tries, reason=reason)
        _logger.warning("WhatsApp webhook event %d (%s) failed: %s", self.id, self.field, reason)
        self.write({"state": "failed", "attempts": self.attempts + 1, "error": reason})

    def _wac_process(self, isolate_units=True):
        """Apply the event to its company. Every handler is idempotent.

        Handlers apply the messages, statuses and contacts of the change through
        :class:`~.wac_webhook_units.Units`: a bad one is listed in ``error`` and the event
        ends *partly failed*; the others are processed.

        :param bool isolate_units: ``False`` in a batch of events (see
            :meth:`_wac_process_batch`): a bad unit then fails the whole event, which the
            batch processes again alone, with its units isolated
        """
        self.ensure_one()
        handler = getattr(self, "_wac_handle_%s" % self.field, None)
        if handler is None:
            self.write({"state": "ignored", "summary": "Field not handled"})
            return
        account = self.account_id.sudo().with_company(self.company_id)
        units = Units(self.env.cr, isolate=isolate_units)
        summary = handler(account, self._wac_value(), units)
        self.write({"state": "partial" if units.failures else "done", "summary": summary,
                    "error": self._wac_failures_text(units.failures) or False,
                    "attempts": self.attempts + 1, "processed_at": fields.Datetime.now()})

    def _wac_failures_text(self, failures):
        """What a person reads about the units that failed: kind, position, reason, fragment."""
        lines = [self.env._("%(kind)s #%(position)s: %(reason)s\n%(fragment)s",
                            kind=failure.kind, position=failure.position + 1,
                            reason=failure.reason, fragment=failure.fragment)
                 for failure in failures[:FAILURES_SHOWN]]
        if len(failures) > FAILURES_SHOWN:
            lines.append(self.env._("…and %(count)s more.", count=len(failures) - FAILURES_SHOWN))
        return "\n\n".join(lines)

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

    def _wac_fail_abandoned(self):
        """Mark failed the pending events whose job will never run (a crash, a cancelled or
        deleted job, a job out of tries): nothing stays *pending* forever."""
        self.env.cr.execute(SQL(
            """
            SELECT e.id FROM wac_webhook_event e
             WHERE e.state = 'pending'
               AND e.write_date < now() at time zone 'UTC' - %(age)s
               AND %(no_live_job)s
               AND %(no_live_delivery_job)s
               AND %(no_live_history_job)s
             LIMIT 1000
            """, age=STUCK_AFTER, no_live_job=no_live_job(SQL("'wac-event-' || e.id")),
            # A delivery's job finishes the changes that met another job's work, and its
            # history job imports its history chunks.
            no_live_delivery_job=no_live_job(SQL("'wac-delivery-' || e.delivery_id")),
            no_live_history_job=no_live_job(SQL("'wac-delivery-history-' || e.delivery_id"))))
        abandoned = self.browse([row[0] for row in self.env.cr.fetchall()])
        reasons = self._wac_last_job_errors(["wac-event-%d" % event.id for event in abandoned])
        for event in abandoned:
            event.write({"state": "failed", "error": self.env._(
                "Its job ended without processing it (%(reason)s). Reprocess it.",
                reason=reasons.get("wac-event-%d" % event.id) or self.env._("the job is gone"))})
        return abandoned

    @api.model
    def _wac_last_job_errors(self, identity_keys):
        """``{identity key: how its last job ended}``, for the keys that had a job."""
        if not identity_keys:
            return {}
        self.env.cr.execute(
            """
            SELECT DISTINCT ON (identity_key) identity_key, state, exc_name, exc_message
              FROM queue_job WHERE identity_key = ANY(%s) ORDER BY identity_key, id DESC
            """, [list(identity_keys)])
        return {key: sanitize(" ".join(p for p in (exc_name, exc_message) if p) or state)
                for key, state, exc_name, exc_message in self.env.cr.fetchall()}

    def action_reprocess(self):
        """Route failed, partly failed, pending and unroutable events again and process them in
        jobs; their deliveries show *processing* until the minute cron sees them settled."""
        events = self.filtered(lambda e: e.state in REPROCESSABLE_STATES)
        for event in events:
            self.env["wac.audit.log"]._wac_log(event, "reprocess", self.env._("Reprocess"),
                                               old=event.state)
        events = events.sudo()
        events.write({"state": "pending", "error": False})
        events._wac_route()
        events.delivery_id.write({"state": "processing"})
        events.filtered(lambda e: e.state == "pending")._wac_enqueue()
        return True

    # ------------------------------------------------------------
    # HANDLERS: one per webhook field, each returns a short summary
    # ------------------------------------------------------------

    def _wac_handle_messages(self, account, value, units):
        Message = self.env["wac.message"].sudo()
        parts = []
        statuses = webhook.statuses(value)
        if statuses:
            units.run("status", statuses,
                      lambda batch: Message._wac_ingest_statuses(account, batch))
            parts.append("%d status(es)" % len(statuses))
        inbound = webhook.inbound_messages(value)
        if inbound:
            units.run("message", inbound,
                      lambda batch: Message._wac_ingest_inbound(account, batch))
            parts.append("%d inbound message(s)" % len(inbound))
        # After the messages: the system message is stored on the old number's contact,
        # which then moves to the new number with it.
        changes = webhook.number_changes(value)
        if changes:
            Contact = self.env["wac.contact"].sudo()
            units.run("number change", changes,
                      lambda batch: Contact._wac_apply_number_changes(account, batch))
            parts.append("%d number change(s)" % len(changes))
        errors = webhook.change_errors(value)
        units.run("error", errors,
                  lambda batch: [account._wac_log_meta_error(error) for error in batch])
        parts += ["error %s" % error.get("code") for error in errors]
        return ", ".join(parts) or "empty"

    def _wac_handle_smb_message_echoes(self, account, value, units):
        echoes = webhook.echoes(value)
        Message = self.env["wac.message"].sudo()
        units.run("echo", echoes, lambda batch: Message._wac_ingest_echoes(account, batch))
        return "%d echo(es) from the Business App" % len(echoes)

    def _wac_handle_history(self, account, value, units):
        Message = self.env["wac.message"].sudo()
        media = webhook.history_media(value)
        if media:
            units.run("message", media,
                      lambda batch: Message._wac_upgrade_placeholders(account, batch))
            return "%d media asset(s)" % len(media)
        # The business number as Meta writes it in ``from`` (digits), not as the user typed it.
        business_number = (value.get("metadata") or {}).get("display_phone_number")
        # The chunk's messages are read one at a time from where they are stored: the
        # delivery body since the delivery job streams it, the payload for older events.
        ref = value.get(webhook_stream.HISTORY_REF) or {}
        if ref.get("source") == webhook_stream.SOURCE_BODY:
            items = self.delivery_id._wac_body_history().items(self.change_index)
        elif ref.get("source") == webhook_stream.SOURCE_VALUE:
            payload = self.payload
            items = webhook_stream.history_items(lambda: webhook_stream.TextReader(payload))
        else:
            items = ()  # no history array
        return Message._wac_ingest_history(
            account, items, business_number or account.display_phone_number, units)

    def _wac_handle_smb_app_state_sync(self, account, value, units):
        Contact = self.env["wac.contact"].sudo()
        counts = units.run("contact", webhook.state_sync(value),
                           lambda batch: Contact._wac_ingest_state_sync(account, batch))
        return "%d contact(s) added or edited, %d removed" % (
            sum(c["added"] for c in counts), sum(c["removed"] for c in counts))

    def _wac_handle_account_update(self, account, value, units):
        return "; ".join(account._wac_apply_account_update(update)
                         for update in webhook.account_update(value))

    def _wac_handle_template_event(self, account, value, units):
        Template = self.env["wac.template"].sudo()
        return "; ".join(Template._wac_apply_event(account, event)
                         for event in webhook.template_event(self.field, value))

    _wac_handle_message_template_status_update = _wac_handle_template_event
    _wac_handle_message_template_quality_update = _wac_handle_template_event
    _wac_handle_template_category_update = _wac_handle_template_event

    def _wac_handle_user_preferences(self, account, value, units):
        prefs = webhook.user_preferences(value)
        Contact = self.env["wac.contact"].sudo()
        units.run("preference", prefs, lambda batch: Contact._wac_apply_preferences(account, batch))
        return "%d preference(s)" % len(prefs)
