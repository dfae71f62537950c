"""A customer's new phone number: the same contact, partner, consent and history.

Meta's ``user_changed_number`` system message comes from the old number and names the new
``wa_id`` (System messages webhook reference). The person is the same: the contact takes the
new identity, so the next message from the new number lands on it, and its opt-out and
messages go with it. The old number is no longer this person's (WhatsApp may give it to
someone else), so it stops being a key of the contact.
"""

from odoo import api, fields, models

from ..tools.wa_cloud import phone as wa_phone


class WacContact(models.Model):
    _inherit = "wac.contact"

    previous_wa_id = fields.Char(
        "Previous WhatsApp ID", readonly=True,
        help="The number this person used before telling WhatsApp they changed it.")
    number_changed_at = fields.Datetime("Number changed on", readonly=True)

    @api.model
    def _wac_apply_number_changes(self, account, changes):
        """Move each contact of ``changes`` to its new number; idempotent on redelivery.

        :param changes: ``webhook.NumberChange`` items
        :return: how many contacts changed number now
        :raises ValueError: a new ``wa_id`` that is not a phone number
        """
        moved = 0
        for change in changes:
            if self._wac_apply_number_change(account, change):
                moved += 1
        return moved

    @api.model
    def _wac_apply_number_change(self, account, change):
        """Give the old number's contact the new identity; ``False`` if nothing was left to do
        (applied before, or no contact to move)."""
        company = account.company_id
        new_key = wa_phone.canonical(change.new_wa_id)
        if not new_key or wa_phone.is_bsuid(change.new_wa_id):
            raise ValueError("%r is not a phone number" % change.new_wa_id)
        old_key = wa_phone.canonical(change.old_wa_id)
        found = self.with_context(active_test=False).search([
            ("company_id", "=", company.id), ("phone_key", "in", [new_key, old_key])])
        self._wac_lock(found)
        contact = found.filtered(lambda c: c.phone_key == old_key)
        already = found.filtered(lambda c: c.phone_key == new_key)
        if not contact:
            # Redelivered after the move, or the old number was never known here: the new
            # number gets its contact the usual way when the person writes from it.
            return False
        if already:
            contact._wac_absorb(already)
        old_number = contact.e164 or contact.wa_id or change.old_wa_id
        region = company.country_id.code
        contact.write({
            "wa_id": change.new_wa_id, "phone_key": new_key,
            "e164": wa_phone.normalize(change.new_wa_id, region) or False,
            "previous_wa_id": change.old_wa_id, "active": True,
            "number_changed_at": fields.Datetime.now(),
        })
        contact._wac_move_partner_number(old_key, old_number)
        return True

    def _wac_lock(self, contacts):
        """Lock ``contacts`` like ``_wac_resolve(lock=True)``: a concurrent change of the same
        person raises a quiet serialization failure here and the event is retried."""
        if contacts:
            self.env.cr.execute(
                "SELECT id FROM wac_contact WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
                [contacts.ids], log_exceptions=False)

    def _wac_absorb(self, duplicate):
        """The person wrote from the new number before Meta's notice arrived: fold that
        contact into this one (messages, consent) and retire it, so one person stays one
        contact."""
        self.ensure_one()
        duplicate.message_ids.sudo().write({"contact_id": self.id})
        vals = {}
        if duplicate.opted_out and not self.opted_out:
            vals.update(opted_out=True, opt_out_date=duplicate.opt_out_date,
                        opt_out_reason=duplicate.opt_out_reason)
        if duplicate.marketing_opt_out and not self.marketing_opt_out:
            vals["marketing_opt_out"] = True
        if duplicate.last_inbound_at and (not self.last_inbound_at
                                          or duplicate.last_inbound_at > self.last_inbound_at):
            vals.update(last_inbound_at=duplicate.last_inbound_at,
                        window_expires_at=duplicate.window_expires_at)
        # Free the key first: the unique key allows one contact per number.
        duplicate.write({"phone_key": False, "active": False})
        if vals:
            self.write(vals)

    def _wac_move_partner_number(self, old_key, old_number):
        """Point the partner's mobile at the new number (reminders must not go to a number
        that may now be someone else's) and say so on the partner."""
        partner = self.partner_id
        if not partner:
            return
        if partner.wa_phone_key == old_key:
            field = "mobile" if partner.mobile else "phone"
            partner.write({field: self.e164 or "+%s" % self.wa_id})
        partner._message_log(body=self.env._(
            "WhatsApp: this person changed their number from %(old)s to %(new)s "
            "(%(company)s). Their opt-out choice and message history were kept.",
            old=old_number, new=self.e164 or self.wa_id, company=self.company_id.name))
