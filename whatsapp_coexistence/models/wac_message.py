import logging
from datetime import datetime, timezone
from typing import NamedTuple

from markupsafe import Markup

from odoo import api, fields, models

from ..tools.wa_cloud import webhook, webhook_stream
from .wac_webhook_units import lock_rows

_logger = logging.getLogger(__name__)

MESSAGE_STATUSES = [
    ("received", "Received"),
    ("pending", "Pending"),
    ("dry_run", "Dry run (not sent)"),
    ("accepted", "Accepted by Meta"),
    ("held_for_quality_assessment", "Held by Meta (pacing)"),
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("read", "Read"),
    ("played", "Played"),
    ("failed", "Failed"),
    ("withdrawn", "Withdrawn (not sent)"),
]
HISTORY_STATUSES = {"SENT": "sent", "DELIVERED": "delivered", "READ": "read", "PLAYED": "played",
                    "ERROR": "failed", "PENDING": "pending"}
BATCH_SIZE = 1000
#: "User stopped marketing messages": the same effect as their ``user_preferences`` stop.
MARKETING_STOPPED = 131050
#: "Re-engagement message": more than 24 hours since the person last wrote.
OUTSIDE_WINDOW = 131047
# The columns of a history row and their SQL types (``_wac_insert_history``).
HISTORY_COLUMNS = {
    "company_id": "int4", "account_id": "int4", "contact_id": "int4", "partner_id": "int4",
    "wamid": "varchar", "direction": "varchar", "source": "varchar", "message_type": "varchar",
    "body": "text", "is_placeholder": "bool", "media_id": "varchar",
    "message_at": "timestamp", "status": "varchar", "phone_number_id": "varchar",
}


class _HistoryRow(NamedTuple):
    """A history message ready to insert: what Meta sent (``raw``) and its row (``vals``)."""

    raw: dict
    vals: dict


def _ts(value):
    """Meta's unix seconds to a naive UTC datetime, as Odoo stores them."""
    if not value:
        return fields.Datetime.now()
    return datetime.fromtimestamp(int(value), tz=timezone.utc).replace(tzinfo=None)


class WacMessage(models.Model):
    """A WhatsApp message of one company, whichever side or device it came from.

    ``source`` tells where it came from: the customer, Odoo through the Cloud API, the WhatsApp
    Business App on the phone (echoes), or the history imported at onboarding. Only ``api``
    messages are ever sent by Odoo; app and history messages never trigger automation.
    """

    _name = "wac.message"
    _description = "WhatsApp Coexistence message"
    _order = "message_at desc, id desc"
    _rec_name = "wamid"
    _check_company_auto = True

    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    account_id = fields.Many2one("wac.account", readonly=True, check_company=True)
    contact_id = fields.Many2one("wac.contact", index=True, readonly=True, check_company=True)
    partner_id = fields.Many2one(related="contact_id.partner_id", store=True, index=True,
                                 precompute=True)
    wamid = fields.Char("Meta message ID", index=True, readonly=True, copy=False)
    direction = fields.Selection([("in", "Inbound"), ("out", "Outbound")], required=True,
                                 readonly=True)
    source = fields.Selection(
        [("customer", "Customer"), ("api", "Odoo (Cloud API)"), ("app", "Business App"),
         ("history", "History import")], required=True, readonly=True)
    message_type = fields.Char(readonly=True)
    body = fields.Text(readonly=True)
    media_id = fields.Char(readonly=True)
    media_mime_type = fields.Char(readonly=True)
    is_placeholder = fields.Boolean("Media pending", readonly=True,
                                    help="History media whose content has not arrived yet.")
    message_at = fields.Datetime("Date", readonly=True, index=True)
    status = fields.Selection(MESSAGE_STATUSES, readonly=True, index=True)
    status_at = fields.Datetime(readonly=True)
    status_ids = fields.One2many("wac.message.status", "message_id", string="Timeline",
                                 readonly=True)
    error_code = fields.Integer(readonly=True)
    error_title = fields.Char(readonly=True)
    error_details = fields.Text(readonly=True)
    context_wamid = fields.Char("Reply to", readonly=True)
    biz_opaque_callback_data = fields.Char(readonly=True)
    recipient_input = fields.Char(readonly=True, help="The number Odoo sent to.")
    recipient_wa_id = fields.Char(readonly=True, help="The WhatsApp ID Meta resolved it to.")
    button_payload = fields.Char(readonly=True)
    res_model = fields.Char("Related model", readonly=True)
    res_id = fields.Many2oneReference("Related record", model_field="res_model", readonly=True)

    _sql_constraints = [
        ("wamid_uniq", "unique(company_id, wamid)", "A message is recorded once per company."),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        vals_list = [self._wac_explain_error(vals) for vals in vals_list]
        messages = super().create(vals_list)
        messages.filtered(lambda m: m.direction == "out" and m.wamid)._wac_attach_orphan_statuses()
        messages._wac_mark_people()
        return messages

    def write(self, vals):
        vals = self._wac_explain_error(vals)
        res = super().write(vals)
        # A send job learns the wamid after the row exists: statuses may already wait for it.
        if vals.get("wamid"):
            self.filtered(lambda m: m.direction == "out")._wac_attach_orphan_statuses()
        if vals.get("error_code") == MARKETING_STOPPED:
            self._wac_mark_people()
        return res

    # Meta errors that say something about the person, applied wherever a message records its
    # error code: the send job's answer or a ``failed`` status webhook.

    def _wac_explain_error(self, vals):
        """Meta's title for 131047 does not say what to do: say it."""
        if vals.get("error_code") == OUTSIDE_WINDOW:
            vals = dict(vals, error_title=self.env._(
                "Outside the 24 h window: a template is required"))
        return vals

    def _wac_mark_people(self):
        """131050: the person stopped marketing messages, as their ``user_preferences`` stop
        would say."""
        contacts = self.filtered(lambda m: m.error_code == MARKETING_STOPPED).contact_id
        contacts.filtered(lambda c: not c.marketing_opt_out).sudo().write(
            {"marketing_opt_out": True})

    # ------------------------------------------------------------
    # STATUSES
    # ------------------------------------------------------------

    @api.model
    def _wac_ingest_statuses(self, account, updates):
        """Record each status once and move each message forward, never backward."""
        company_id = account.company_id.id
        for update in updates:
            if not update.wamid or not update.status:
                continue
            error = webhook.error_info(update.errors)
            self.env.cr.execute(
                """
                INSERT INTO wac_message_status
                       (company_id, wamid, status, status_at, recipient_id,
                        biz_opaque_callback_data, pricing_category, pricing_type, error_code,
                        error_title, error_details, create_date, write_date, create_uid, write_uid)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                        now() at time zone 'UTC', now() at time zone 'UTC', %s, %s)
                ON CONFLICT (company_id, wamid, status) DO NOTHING
                """,
                (company_id, update.wamid, update.status, _ts(update.timestamp),
                 update.recipient_id, update.biz_opaque_callback_data, update.pricing_category,
                 update.pricing_type, error.code, error.title, error.details,
                 self.env.uid, self.env.uid),
                # The same status stored meanwhile by another job: a serialization failure
                # under REPEATABLE READ, retried quietly by the event's job.
                log_exceptions=False,
            )
        self.env["wac.message.status"].invalidate_model()
        wamids = list({u.wamid for u in updates if u.wamid})
        messages = self.search([("company_id", "=", company_id), ("wamid", "in", wamids)])
        if messages:
            # Statuses of one message come in several webhooks at once (sent, delivered): lock
            # its row quietly first, so that a job that lost the race retries without the
            # ORM's "bad query" error at the update.
            self.env.cr.execute(
                "SELECT id FROM wac_message WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
                [messages.ids], log_exceptions=False)
        messages._wac_attach_orphan_statuses()

    def _wac_attach_orphan_statuses(self):
        """Link the status rows of these messages and apply the most advanced one."""
        if not self:
            return
        Status = self.env["wac.message.status"]
        orphans = Status.search([("wamid", "in", self.mapped("wamid")),
                                 ("company_id", "in", self.company_id.ids),
                                 ("message_id", "=", False)])
        by_key = {(m.company_id.id, m.wamid): m for m in self}
        updated = self.browse()
        for status in orphans:
            message = by_key.get((status.company_id.id, status.wamid))
            if message:
                status.message_id = message
                updated |= message
        # Only a message that just got rows can change: the others were up to date.
        for message in updated:
            message._wac_apply_best_status()

    def _wac_apply_best_status(self):
        self.ensure_one()
        vals = {}
        best = self.status if self.status in webhook.STATUS_RANK else None
        best_row = None
        for row in self.status_ids:
            if webhook.status_supersedes(row.status, best):
                best, best_row = row.status, row
        if best_row:
            vals.update(status=best, status_at=best_row.status_at)
            if best == "failed":
                vals.update(error_code=best_row.error_code, error_title=best_row.error_title,
                            error_details=best_row.error_details)
        # Meta echoes the callback data on some statuses only: take it from any of them.
        opaque = next((r.biz_opaque_callback_data for r in self.status_ids
                       if r.biz_opaque_callback_data), None)
        if opaque and not self.biz_opaque_callback_data:
            vals["biz_opaque_callback_data"] = opaque
        if vals:
            self.write(vals)

    # ------------------------------------------------------------
    # INBOUND, ECHOES, HISTORY
    # ------------------------------------------------------------

    @api.model
    def _wac_existing_wamids(self, company_id, wamids):
        existing = set()
        wamids = [w for w in wamids if w]
        for start in range(0, len(wamids), BATCH_SIZE):
            self.env.cr.execute(
                "SELECT wamid FROM wac_message WHERE company_id = %s AND wamid = ANY(%s)",
                (company_id, wamids[start:start + BATCH_SIZE]))
            existing.update(row[0] for row in self.env.cr.fetchall())
        return existing

    @api.model
    def _wac_ingest_inbound(self, account, inbound):
        """Record messages from customers, post them on the partner, update window and consent."""
        company_id = account.company_id.id
        known = self._wac_existing_wamids(company_id, [m.wamid for m in inbound])
        fresh = [m for m in inbound if m.wamid not in known]
        contacts = self.env["wac.contact"]._wac_resolve(
            account, [(m.from_wa_id, m.bsuid, m.profile_name) for m in fresh], lock=True)
        vals_list, seen = [], set()
        for msg in fresh:
            if msg.wamid and msg.wamid in seen:
                continue
            seen.add(msg.wamid)
            contact = contacts.get(msg.from_wa_id or msg.bsuid)
            error = webhook.error_info(msg.errors)
            vals_list.append({
                "company_id": company_id, "account_id": account.id,
                "contact_id": contact.id if contact else False,
                # Meta always gives an id; a message without one is kept, without a key.
                "wamid": msg.wamid or False, "direction": "in", "source": "customer",
                "message_type": msg.type, "body": msg.text,
                "media_id": (msg.media or {}).get("id"),
                "media_mime_type": (msg.media or {}).get("mime_type"),
                "message_at": _ts(msg.timestamp), "status": "received",
                "context_wamid": msg.context_wamid, "button_payload": msg.button_payload,
                "error_code": error.code, "error_title": error.title,
            })
        messages = self.create(vals_list)
        for message in messages:
            contact = message.contact_id
            if not contact:
                continue
            # System messages (number changed...) and reactions don't open the window.
            if message.message_type not in ("system", "reaction", "unsupported"):
                contact._wac_touch_inbound(message.message_at)
            # A tapped button is an answer to that message (e.g. "Cancelar horário"), never an
            # opt-out, whatever its label.
            if not message.button_payload:
                contact._wac_apply_consent_keywords(account, message.body)
            message._wac_post_on_partner()
        messages._wac_on_inbound()
        return messages

    def _wac_on_inbound(self):
        """Hook for automation (replies to reminders). Never called for echoes or history."""

    def _wac_post_on_partner(self):
        partner = self.contact_id.partner_id
        if not partner:
            return
        label = {"in": self.env._("WhatsApp from the customer"),
                 "out": self.env._("WhatsApp sent")}[self.direction]
        body = self.body or "[%s]" % (self.message_type or "?")
        partner._message_log(body=Markup("<b>%s</b> (%s): %s") % (
            label, self.company_id.name, body))

    @api.model
    def _wac_ingest_echoes(self, account, echoes):
        """Messages typed on the phone: outbound, source ``app``; no window, no automation."""
        company_id = account.company_id.id
        known = self._wac_existing_wamids(company_id, [e.wamid for e in echoes])
        fresh = {e.wamid: e for e in echoes if e.wamid and e.wamid not in known}
        contacts = self.env["wac.contact"]._wac_resolve(
            account, [(e.to, None, None) for e in fresh.values() if e.to], lock=True)
        messages = self.create([{
            "company_id": company_id, "account_id": account.id,
            "contact_id": contacts[e.to].id if e.to in contacts else False,
            "wamid": e.wamid, "direction": "out", "source": "app",
            "message_type": e.type, "body": e.text, "media_id": (e.media or {}).get("id"),
            "media_mime_type": (e.media or {}).get("mime_type"),
            "message_at": _ts(e.timestamp), "status": "sent", "recipient_input": e.to,
            "context_wamid": e.context_wamid,
        } for e in fresh.values()])
        for message in messages:
            message._wac_post_on_partner()
        return messages

    @api.model
    def _wac_ingest_history(self, account, items, business_number, units):
        """Import history items in batches of :data:`BATCH_SIZE` messages; record each item's
        chunk (phase, order, progress, count) in ``wac.history.chunk``.

        Memory is bounded by the batch, not by the webhook: messages are read one at a time
        (``webhook_stream.history_items``), and contacts are resolved per batch; only the
        contact ids of the previous batch are kept (a thread's messages follow each other, so
        a thread spanning two batches is resolved once). A message that cannot be stored is
        recorded in ``units`` and its neighbours are imported.

        :param items: iterable of ``webhook_stream.HistoryItem``: ``phase``, ``chunk_order``,
            ``progress``, ``declined``, ``complete``, and ``messages``, an iterator of
            ``(wa_id, HistoryMessage or None)``
        :param business_number: the business number as Meta writes it in ``from``; a message
            from it (or with ``from_me``) was sent by the business
        :param units: the event's ``Units``
        """
        imported = 0
        contact_ids = {}
        Chunk = self.env["wac.history.chunk"]
        for item in items:
            count = 0
            for batch in webhook_stream.batched(item.messages, BATCH_SIZE):
                contact_ids = self._wac_history_contacts(
                    account, [wa_id for wa_id, _m in batch if wa_id], contact_ids, units)
                count += self._wac_history_batch(
                    account, batch, business_number, contact_ids, units)
                self.env.invalidate_all()  # keep memory bounded by the batch
            Chunk._wac_record(account, item, count)
            imported += count
        return "%d history message(s) imported" % imported

    @api.model
    def _wac_history_contacts(self, account, wa_ids, known, units):
        """``{wa_id: contact id}`` for ``wa_ids``, found or created in the account's company.

        :param list wa_ids: in the order of the threads (repeated for each message)
        :param dict known: the map of the previous batch, reused for the wa_ids it has
        """
        wa_ids = dict.fromkeys(wa_ids)
        missing = [wa_id for wa_id in wa_ids if wa_id not in known]
        found = {}

        def resolve(part):
            contacts = self.env["wac.contact"]._wac_resolve(
                account, [(wa_id, None, None) for wa_id in part])
            return {wa_id: contact.id for wa_id, contact in contacts.items()}

        for resolved in units.run("contact", missing, resolve):
            found.update(resolved)
        return {wa_id: known[wa_id] if wa_id in known else found[wa_id]
                for wa_id in wa_ids if wa_id in known or wa_id in found}

    @api.model
    def _wac_history_batch(self, account, batch, business_number, contact_ids, units):
        """Insert the messages of ``batch`` (``(wa_id, message or None)`` pairs) not stored yet;
        return how many were inserted. A message whose values cannot be built (a timestamp
        out of range) or stored is recorded in ``units``."""
        company_id = account.company_id.id
        messages = [(wa_id, msg) for wa_id, msg in batch if msg is not None and msg.wamid]
        known = self._wac_existing_wamids(company_id, [m.wamid for _w, m in messages])
        rows, seen = [], set()
        for position, (wa_id, msg) in enumerate(messages):
            if msg.wamid in known or msg.wamid in seen:
                continue
            seen.add(msg.wamid)
            try:
                vals = self._wac_history_vals(account, wa_id, msg, business_number, contact_ids)
            except (ValueError, OverflowError, OSError) as error:
                units.settle("history message", position, msg, error)
                continue
            rows.append(_HistoryRow(msg.raw, vals))
        inserted = units.run("history message", rows, lambda part: len(
            self._wac_insert_history([row.vals for row in part])))
        return sum(inserted)

    @api.model
    def _wac_history_vals(self, account, wa_id, msg, business_number, contact_ids):
        """The ``_wac_insert_history`` values of one history message."""
        outbound = msg.sent_by_business(business_number)
        return {
            "company_id": account.company_id.id, "account_id": account.id,
            "contact_id": contact_ids.get(wa_id, False),
            "wamid": msg.wamid, "direction": "out" if outbound else "in",
            "source": "history", "message_type": msg.type, "body": msg.text,
            "is_placeholder": msg.type == "media_placeholder",
            "media_id": (msg.media or {}).get("id"),
            "message_at": _ts(msg.timestamp),
            "status": HISTORY_STATUSES.get(msg.status or "",
                                           "sent" if outbound else "received"),
            "phone_number_id": account.phone_number_id,
        }

    @api.model
    def _wac_insert_history(self, vals_list):
        """Insert one batch of history rows with a single ``INSERT``; return the new records.

        ``create()`` spent two thirds of a history import on per-row work that history rows
        do not need (bench/README.md): defaults (there are none), the company check of each
        link (the company is the account's and the contacts were resolved in it), and an
        ``UPDATE`` of the stored related ``partner_id`` after the ``INSERT`` (it is the
        contact's partner, known here). The rows stored are the ones ``create()`` would store,
        and what ``create()`` adds for outbound messages, attaching the statuses that arrived
        before them, is done here too. History never triggers automation.

        :param list vals_list: ``create()`` values with the keys of :data:`HISTORY_COLUMNS`
            except ``partner_id``
        """
        if not vals_list:
            return self.browse()
        contacts = self.env["wac.contact"].browse({v["contact_id"] for v in vals_list
                                                   if v["contact_id"]})
        partners = {contact.id: contact.partner_id.id for contact in contacts}
        columns = {name: [] for name in HISTORY_COLUMNS}
        for vals in vals_list:
            row = dict(vals, partner_id=partners.get(vals["contact_id"]))
            for name, values in columns.items():
                # False is the ORM's NULL, except for booleans.
                value = row.get(name)
                values.append(value if value is not False or name == "is_placeholder" else None)
        self.env.cr.execute(
            """
            INSERT INTO wac_message (%s, create_uid, write_uid, create_date, write_date)
            SELECT u.*, %%(uid)s, %%(uid)s, now() at time zone 'UTC', now() at time zone 'UTC'
              FROM unnest(%s) AS u
            RETURNING id, direction
            """ % (", ".join(HISTORY_COLUMNS),
                   ", ".join("%%(%s)s::%s[]" % (name, sql_type)
                             for name, sql_type in HISTORY_COLUMNS.items())),
            dict(columns, uid=self.env.uid),
        )
        rows = self.env.cr.fetchall()
        self.browse([mid for mid, direction in rows if direction == "out"]) \
            ._wac_attach_orphan_statuses()
        return self.browse([mid for mid, _direction in rows])

    @api.model
    def _wac_upgrade_placeholders(self, account, media_messages):
        """History media arrive after their placeholder (within 14 days of onboarding)."""
        company_id = account.company_id.id
        # The same message twice in one change: the last copy wins, stored once.
        media_messages = list({m.wamid: m for m in media_messages if m.wamid}.values())
        existing = {m.wamid: m for m in self.search([
            ("company_id", "=", company_id), ("wamid", "in", [m.wamid for m in media_messages])])}
        # A placeholder another job changed since this snapshot fails here, quietly, and the
        # event is retried; the ORM's update would log each try as an ERROR.
        lock_rows(self.env.cr, "wac_message", [m.id for m in existing.values()])
        missing = []
        for media in media_messages:
            vals = {"message_type": media.type, "is_placeholder": False,
                    "media_id": (media.media or {}).get("id"),
                    "media_mime_type": (media.media or {}).get("mime_type"),
                    "body": media.text}
            if media.wamid in existing:
                existing[media.wamid].write(vals)
            else:
                missing.append((media, vals))
        if missing:  # the media webhook overtook its history chunk
            contacts = self.env["wac.contact"]._wac_resolve(
                account, [(m.from_wa_id, m.bsuid, None) for m, _v in missing], lock=True)
            self.create([dict(vals, company_id=company_id, account_id=account.id,
                              wamid=m.wamid, direction="in", source="history",
                              message_at=_ts(m.timestamp), status="received",
                              contact_id=contacts.get(m.from_wa_id or m.bsuid,
                                                      self.env["wac.contact"]).id)
                         for m, vals in missing])
