"""A company connects another WhatsApp number: by *Change number*, a new Embedded Signup, or
an edit of the Phone Number ID.

Whichever way, the change is recorded (``wac.number.change``), audited and noted in the
chatter; messages keep the number they were sent or received on; webhooks still addressed to
the previous number stay *unroutable* with a summary that says so; and the Business App's
history and contacts sync start over for the new number, as at onboarding: Meta allows each
sync once per number, within 24 hours of connecting it (reference §3.4).
"""

from odoo import fields, models
from odoo.exceptions import UserError

from ..tools.wa_cloud import errors as wa_errors

#: The sync types of ``smb_app_data``, in Meta's order: contacts first, then history.
SYNC_TYPES = (("contacts_request_id", "smb_app_state_sync"), ("history_request_id", "history"))


class WacAccount(models.Model):
    _inherit = "wac.account"  # pylint: disable=consider-merging-classes-inherited

    number_change_ids = fields.One2many("wac.number.change", "account_id", "Number changes",
                                        readonly=True)

    def write(self, vals):
        if "phone_number_id" not in vals:
            return super().write(vals)
        before = {account.id: (account.phone_number_id, account.display_phone_number)
                  for account in self}
        result = super().write(vals)
        for account in self:
            old_id, old_display = before[account.id]
            # Connecting a first number, or forgetting it, is not a change of number.
            if old_id and account.phone_number_id and account.phone_number_id != old_id:
                account._wac_number_changed(old_id, old_display)
        return result

    # ------------------------------------------------------------
    # CHANGE NUMBER
    # ------------------------------------------------------------

    def _wac_number_source(self):
        """How the number is being changed: the wizard says so; an Embedded Signup under way
        for the new number is a signup; anything else is an edit by hand."""
        source = self.env.context.get("wac_number_change_source")
        if source:
            return source
        if self.onboarding_ids.filtered(lambda o: o.state == "started"
                                        and o.phone_number_id == self.phone_number_id):
            return "signup"
        return "edit"

    def _wac_number_changed(self, old_id, old_display):
        """Record the move from ``old_id`` and restart the syncs' state for the new number.

        :return: the ``wac.number.change`` row
        """
        self.ensure_one()
        change = self.env["wac.number.change"].sudo().create({
            "company_id": self.company_id.id, "account_id": self.id,
            "user_id": self.env.uid, "source": self._wac_number_source(),
            "old_phone_number_id": old_id, "old_display_phone_number": old_display,
            "new_phone_number_id": self.phone_number_id,
            "new_display_phone_number": self.display_phone_number,
            "old_history_messages": self.history_messages,
        })
        # The previous number's sync is over: its chunks would collide with the new number's
        # (same phases and orders). Its messages stay, with their number.
        self.sudo().history_chunk_ids.unlink()
        self.sudo().history_requested_on = False
        # The address book that flagged these contacts was the previous number's phone.
        self.env["wac.contact"].sudo().search([
            ("company_id", "=", self.company_id.id), ("in_app_address_book", "=", True),
        ]).write({"in_app_address_book": False})
        old_label = old_display or old_id
        new_label = self.display_phone_number or self.phone_number_id
        source = dict(change._fields["source"]._description_selection(self.env))[change.source]
        self.env["wac.audit.log"]._wac_log(
            self, "change_number", self.env._("Phone number"),
            old="%s (%s)" % (old_label, old_id),
            new="%s (%s)" % (new_label, self.phone_number_id), note=source)
        self.message_post(body=self.env._(
            "WhatsApp number changed by %(user)s from %(old)s to %(new)s (%(how)s). The "
            "previous number's messages stay readable; webhooks still addressed to it are "
            "kept as unroutable. History and contacts sync start over for the new number.",
            user=self.env.user.name, old=old_label, new=new_label, how=source),
            subtype_xmlid="mail.mt_note")
        return change

    def _wac_change_number(self, phone_number_id):
        """Move this company to another number of its WABA, checked with Meta first.

        Meta is asked before anything changes: the number must be one of the WABA's and
        readable with the company's token; the app is subscribed to the WABA if it is not.
        Then the number changes and, for a coexistence number, the contacts and history syncs
        are requested.

        :param str phone_number_id: the new number's id
        :return: the ``wac.number.change`` row
        :raises UserError: the number is the current one, not in the WABA, or Meta refuses
        """
        self.ensure_one()
        self.check_access("write")
        phone_number_id = (phone_number_id or "").strip()
        if not phone_number_id:
            raise UserError(self.env._("Choose the new number or type its Phone Number ID."))
        if phone_number_id == self.phone_number_id:
            raise UserError(self.env._("%(number)s is already this company's number.",
                                       number=self.display_phone_number or phone_number_id))
        client = self._wac_client()
        try:
            numbers = client.list_phone_numbers(self.waba_id)
            if phone_number_id not in {str(n.get("id")) for n in numbers}:
                raise UserError(self.env._(
                    "Phone Number ID %(id)s is not a number of the WhatsApp Business Account "
                    "%(waba)s. Add the number in WhatsApp Manager first, or connect the other "
                    "WABA with Embedded Signup.", id=phone_number_id, waba=self.waba_id))
            info = client.get_phone_number(phone_number_id)
            if not client.is_app_subscribed(self.waba_id, client.app_id):
                client.subscribe_app(self.waba_id)
        except wa_errors.WaCloudError as error:
            raise UserError(self._wac_error_advice(error)) from error
        self._wac_check_number_free(phone_number_id)
        self.with_context(wac_number_change_source="wizard").write({
            "phone_number_id": phone_number_id,
            "display_phone_number": info.get("display_phone_number") or False,
            "verified_name": info.get("verified_name"),
            "is_on_biz_app": bool(info.get("is_on_biz_app")),
            "last_check_on": fields.Datetime.now(), "last_check_ok": True, "last_error": False,
        })
        change = self.number_change_ids[:1].sudo()  # rows are written by code, not by hand
        if self.is_on_biz_app:
            self._wac_request_syncs(client, change)
        return change

    def _wac_check_number_free(self, phone_number_id):
        """Refuse a number another company already uses (its webhooks would land there)."""
        other = self.sudo().with_context(active_test=False).search(
            [("phone_number_id", "=", phone_number_id), ("id", "!=", self.id)], limit=1)
        if other:
            raise UserError(self.env._(
                "Phone Number ID %(id)s is already connected to %(company)s.",
                id=phone_number_id, company=other.company_id.name))

    def _wac_request_syncs(self, client, change):
        """Ask Meta for the new number's contacts, then its history (once each, within
        24 hours). A refusal is recorded on the change and in the chatter: the number
        change itself stands, and Meta's side cannot be undone by rolling it back."""
        for field, sync_type in SYNC_TYPES:
            try:
                change[field] = client.request_smb_app_data(self.phone_number_id, sync_type)
            except wa_errors.WaCloudError as error:
                message = self._wac_error_advice(error)
                change.sync_error = message
                self.message_post(body=self.env._(
                    "Meta refused the %(sync)s sync of the new number: %(error)s",
                    sync=sync_type, error=message), subtype_xmlid="mail.mt_note")
                return
        self.history_state = "requested"

    def _wac_waba_numbers(self):
        """The WABA's numbers as ``(id, display number, verified name)``, for the wizard.

        :raises UserError: Meta refused or could not be reached, with what to do
        """
        self.ensure_one()
        try:
            numbers = self._wac_client().list_phone_numbers(self.waba_id)
        except wa_errors.WaCloudError as error:
            raise UserError(self._wac_error_advice(error)) from error
        return [(str(n["id"]), n.get("display_phone_number"), n.get("verified_name"))
                for n in numbers if n.get("id")]

    def action_wac_change_number(self):
        """Open *Change number* with the WABA's numbers to choose from."""
        self.ensure_one()
        self.check_access("write")
        wizard = self.env["wac.change.number"]._wac_open(self)
        return {
            "type": "ir.actions.act_window", "res_model": "wac.change.number",
            "res_id": wizard.id, "view_mode": "form", "target": "new",
            "name": self.env._("Change number"),
        }
