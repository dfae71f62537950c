from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..tools.wa_cloud import phone as wa_phone
from ..tools.wa_cloud.template_params import fold, split_words
from .wac_webhook_units import claim, lock_rows

# Meta's customer service window (reference §4.4).
SERVICE_WINDOW = timedelta(hours=24)
# The first key of the advisory locks that serialize the creation of one contact (any number
# that no other lock of this database uses).
CLAIM_LOCK_CLASS = 0x5741_4343


class WacContact(models.Model):
    """A WhatsApp identity as one company knows it: ``wa_id``, E.164, BSUID and consent.

    Per company on purpose: an opt-out sent to one business is not a fact about another one.
    ``phone_key`` (Brazil with its 9th digit, Argentina with 549) is the key that makes one
    person one contact whichever variant Meta sends.
    """

    _name = "wac.contact"
    _description = "WhatsApp Coexistence contact"
    _order = "last_inbound_at desc, id desc"
    _rec_name = "display_name"
    _check_company_auto = True

    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    partner_id = fields.Many2one("res.partner", index=True, ondelete="set null",
                                 check_company=True)
    active = fields.Boolean(default=True)
    wa_id = fields.Char("WhatsApp ID", readonly=True, help="As Meta sent it; never rejected.")
    phone_key = fields.Char(readonly=True, index=True)
    e164 = fields.Char("Phone (E.164)", readonly=True)
    bsuid = fields.Char("Business-scoped user ID", readonly=True, index=True)
    profile_name = fields.Char(readonly=True)
    app_name = fields.Char("Name in the Business App", readonly=True)
    in_app_address_book = fields.Boolean(readonly=True)
    opted_out = fields.Boolean()
    opt_out_date = fields.Datetime(readonly=True)
    opt_out_reason = fields.Char(readonly=True)
    marketing_opt_out = fields.Boolean(readonly=True,
                                       help="The person stopped marketing messages in WhatsApp.")
    last_inbound_at = fields.Datetime(readonly=True)
    window_expires_at = fields.Datetime(
        "Service window ends", readonly=True,
        help="Free-form messages can be sent until then. Messages sent from the Business App "
        "do not open or extend this window.")
    message_ids = fields.One2many("wac.message", "contact_id", readonly=True)

    _sql_constraints = [
        ("phone_key_uniq", "unique(company_id, phone_key)",
         "This WhatsApp number already has a contact in this company."),
    ]

    @api.depends("partner_id.name", "profile_name", "e164", "wa_id")
    def _compute_display_name(self):
        for contact in self:
            name = contact.partner_id.name or contact.profile_name or contact.app_name
            number = contact.e164 or contact.wa_id or contact.bsuid
            contact.display_name = "%s (%s)" % (name, number) if name else number

    # ------------------------------------------------------------
    # IDENTITY
    # ------------------------------------------------------------

    @api.model
    def _wac_resolve(self, account, identities, partners=None, lock=False):
        """Find or create the contacts of ``identities`` in the account's company, in bulk.

        An identity with neither a number (digits) nor a BSUID, such as a ``wa_id`` of
        ``"abc"``, has nothing to be found by: it gets no contact (its message is stored
        without one) instead of a contact with an empty key, which the next one would collide
        with.

        :param identities: iterable of ``(wa_id_or_number, bsuid, name)``
        :param partners: ``{wa_id_or_number: res.partner}``, the partner a new contact belongs
            to when the caller knows it (a send writes to an attendee); else the partner is
            found by number, or created
        :param lock: lock the contacts found, for a caller about to update them (webhooks):
            a contact another job changed meanwhile then raises a serialization failure here,
            quietly, instead of at the update, through the ORM's logged query
        :return: dict ``{wa_id_or_number or bsuid: wac.contact}``
        """
        company = account.company_id
        wanted = {}
        for number, bsuid, name in identities:
            key = (wa_phone.canonical(number) if number else None) or None
            if key or bsuid:
                wanted[number or bsuid] = (key, bsuid, name, number)
        if not wanted:
            return {}
        existing = self._wac_find_existing(
            company, [v[0] for v in wanted.values() if v[0]],
            [v[1] for v in wanted.values() if v[1]], lock)
        by_key = {c.phone_key: c for c in existing if c.phone_key}
        by_bsuid = {c.bsuid: c for c in existing if c.bsuid}
        result, to_create = {}, {}
        for ref, (key, bsuid, name, number) in wanted.items():
            contact = by_key.get(key) or by_bsuid.get(bsuid)
            if contact:
                contact._wac_refresh_identity(number, bsuid, name)
                result[ref] = contact
            else:
                to_create.setdefault(key or bsuid, (ref, key, bsuid, name, number))
        if to_create:
            result.update(self._wac_create_identities(company, to_create.values(), partners))
        for ref, (key, bsuid, _name, _number) in wanted.items():
            if ref not in result:  # a second variant of a contact created above
                result[ref] = next(c for c in result.values()
                                   if (key and c.phone_key == key) or (bsuid and c.bsuid == bsuid))
        return result

    @api.model
    def _wac_find_existing(self, company, keys, bsuids, lock):
        """The contacts of ``company`` with one of these phone keys or BSUIDs, archived ones
        included; locked (see :meth:`_wac_resolve`) when ``lock``."""
        existing = self.with_context(active_test=False).search([
            ("company_id", "=", company.id),
            "|", ("phone_key", "in", keys), ("bsuid", "in", bsuids),
        ])
        if lock:
            lock_rows(self.env.cr, "wac_contact", existing.ids)
        return existing

    @api.model
    def _wac_create_identities(self, company, items, partners=None):
        """Create one contact per ``(ref, key, bsuid, name, number)`` of ``items``, owned by
        the partner ``partners`` names for ``ref``, else one found by number or created.

        :return: dict ``{ref: wac.contact}``
        """
        items = list(items)
        # The company partner's country, as ``res.partner._wac_number`` reads it (the
        # company's own country is computed from its address).
        region = company.partner_id.country_id.code
        owners = dict(partners or {})
        unknown = [item for item in items if item[0] not in owners]
        if unknown:
            owners.update(self._wac_find_or_create_partners(company, region, unknown))
        self._wac_claim_phone_keys(company, [item[1] for item in items])
        created = self.create([{
            "company_id": company.id,
            "partner_id": owners[ref].id,
            "wa_id": number if number and not wa_phone.is_bsuid(number) else False,
            "phone_key": key,
            "e164": wa_phone.normalize(number, region) if number else False,
            "bsuid": bsuid,
            "profile_name": name,
        } for ref, key, bsuid, name, number in items])
        return {ref: contact for contact, (ref, *_rest) in zip(created, items)}

    @api.model
    def _wac_claim_phone_keys(self, company, keys):
        """Be the only transaction creating the contacts of ``keys`` in ``company`` until this
        one ends; raise a serialization failure, quietly, when another transaction created one
        of them after this one's snapshot.

        Two jobs may create the contact of a new customer at once (two webhooks of one
        person). Without this, the second insert meets the first one's row at the unique key
        with an ERROR line from the ORM's query. Here the second job waits for the first one's
        transaction (an advisory lock per key, taken in key order), then a probe insert,
        always rolled back, meets the committed row: PostgreSQL reports it as a serialization
        failure under REPEATABLE READ, so the event is retried (:func:`~.wac_webhook_units.
        classify`) and its next transaction finds the contact.
        """
        keys = sorted({key for key in keys if key})
        if not keys:
            return
        claim(self.env.cr, CLAIM_LOCK_CLASS, ["%s:%s" % (company.id, key) for key in keys], SQL(
            """INSERT INTO wac_contact (company_id, phone_key, active)
               SELECT %s, key, true FROM unnest(%s::varchar[]) AS key
                   ON CONFLICT (company_id, phone_key) DO NOTHING""", company.id, keys))

    def _wac_refresh_identity(self, number, bsuid, name):
        vals = {}
        if bsuid and self.bsuid != bsuid:
            vals["bsuid"] = bsuid
        if name and self.profile_name != name:
            vals["profile_name"] = name
        if number and not self.wa_id and not wa_phone.is_bsuid(number):
            vals["wa_id"] = number
        if not self.active:
            vals["active"] = True
        if vals:
            # Not every caller locked the contact (a history import resolves them unlocked):
            # a concurrent change then fails here, quietly, not at the ORM's logged UPDATE.
            lock_rows(self.env.cr, "wac_contact", self.ids)
            self.write(vals)

    @api.model
    def _wac_find_or_create_partners(self, company, region, items):
        """Map each item's ref to a partner of ``company`` (or a shared one) with that number."""
        keys = [key for _ref, key, *_ in items if key]
        partners = self.env["res.partner"].search([
            ("wa_phone_key", "in", keys), ("company_id", "in", [company.id, False]),
            ("id", "not in", self.env["res.company"].sudo().search([]).partner_id.ids),
        ], order="id") if keys else self.env["res.partner"]
        by_key = {}
        # The company's own contacts first, then shared ones.
        for partner in partners.sorted(lambda p: not p.company_id):
            by_key.setdefault(partner.wa_phone_key, partner)
        result, to_create = {}, []
        for ref, key, bsuid, name, number in items:
            if key in by_key:
                result[ref] = by_key[key]
            else:
                to_create.append((ref, name, number, bsuid))
        created = self.env["res.partner"].create([{
            "name": name or (wa_phone.normalize(number, region) if number else bsuid) or ref,
            "mobile": wa_phone.normalize(number, region) if number else False,
            "company_id": company.id,
        } for ref, name, number, bsuid in to_create])
        for partner, (ref, *_rest) in zip(created, to_create):
            result[ref] = partner
        return result

    # ------------------------------------------------------------
    # CONSENT AND WINDOW
    # ------------------------------------------------------------

    def _wac_touch_inbound(self, when):
        """A message from the person opens or extends the customer service window."""
        for contact in self:
            if not contact.last_inbound_at or when > contact.last_inbound_at:
                contact.write({"last_inbound_at": when, "window_expires_at": when + SERVICE_WINDOW})

    def write(self, vals):
        # Opt-outs by keyword or Meta's preferences carry their reason; a manual edit does not.
        self.env["wac.audit.log"]._wac_log_writes(self, vals, ["opted_out"])
        return super().write(vals)

    def _wac_set_opt_out(self, opted_out, reason):
        for contact in self.filtered(lambda c: c.opted_out != opted_out):
            contact.write({"opted_out": opted_out, "opt_out_reason": reason,
                           "opt_out_date": fields.Datetime.now() if opted_out else False})
            if contact.partner_id:
                contact.partner_id._message_log(body=self.env._(
                    "WhatsApp: %(company)s %(action)s (%(reason)s).",
                    company=contact.company_id.name,
                    action=self.env._("opted out") if opted_out else self.env._("opted in again"),
                    reason=reason))

    def _wac_apply_consent_keywords(self, account, text):
        """Opt this contact out (or back in) when the whole message ``text`` is one of the
        keywords of ``account``; case, accents and punctuation are folded away as for replies."""
        self.ensure_one()
        word = fold(text)
        if not word:
            return
        if word in split_words(account.opt_out_keywords):
            self._wac_set_opt_out(True, self.env._("keyword %s", text.strip()))
        elif word in split_words(account.opt_in_keywords):
            self._wac_set_opt_out(False, self.env._("keyword %s", text.strip()))

    # ------------------------------------------------------------
    # WEBHOOK HANDLERS
    # ------------------------------------------------------------

    @api.model
    def _wac_ingest_state_sync(self, account, items):
        """Apply the Business App's address book: ``add`` (or edit) and ``remove``.

        :return: ``{"added": n, "removed": n}``
        :raises ValueError: an added number is not a phone number
        """
        contacts_by_number = self._wac_resolve(account, [
            (item.phone_number, None, item.full_name) for item in items
            if item.type == "contact" and item.phone_number and item.action == "add"],
            lock=True)
        counts = {"added": 0, "removed": 0}
        for item in items:
            if item.type != "contact" or not item.phone_number:
                continue
            if item.action == "add":
                contact = contacts_by_number.get(item.phone_number)
                if not contact:
                    raise ValueError("%r is not a phone number" % item.phone_number)
                contact.write({"app_name": item.full_name or item.first_name,
                               "in_app_address_book": True, "active": True})
                partner = contact.partner_id
                if partner and item.full_name and partner.name in (
                        contact.e164, contact.wa_id, "+%s" % contact.wa_id):
                    partner.name = item.full_name
                counts["added"] += 1
            elif item.action == "remove":
                # Unlink the WhatsApp identity from the address book; never delete the partner.
                key = wa_phone.canonical(item.phone_number)
                contacts = self.search([("company_id", "=", account.company_id.id),
                                        ("phone_key", "=", key)]) if key else self
                # Locked first: another job's change of the contact fails here quietly, not
                # at the flush with an ERROR line per replay (7,523 in one fuzz run).
                lock_rows(self.env.cr, "wac_contact", contacts.ids)
                contacts.write({"in_app_address_book": False, "active": False})
                counts["removed"] += 1
        return counts

    @api.model
    def _wac_apply_preferences(self, account, prefs):
        """Marketing stop/resume from WhatsApp itself (utility templates still go through)."""
        contacts = self._wac_resolve(account, [(p.wa_id, None, None) for p in prefs if p.wa_id],
                                     lock=True)
        for pref in prefs:
            if pref.category == "marketing_messages" and pref.wa_id in contacts:
                contacts[pref.wa_id].write({"marketing_opt_out": pref.value == "stop"})
        return "%d preference(s)" % len(prefs)
