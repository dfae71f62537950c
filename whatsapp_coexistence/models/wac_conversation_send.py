"""Replies typed by a person in a conversation: sent at once, never twice.

A reply follows the discipline of the appointment send job (``wac_send_sender``): its row is
the *intent*, committed with its send key and its payload before Meta is called, and the
*outcome* is committed right after Meta's answer, both on a side cursor of their own. The key
(``wacreply:<conversation>:<token>``) is the composer's: pressing Send twice finds the first
row and sends nothing. A dropped connection leaves the attempt open: Meta may have accepted
it, so it is never resent; the status webhook carrying the key adopts its ``wamid``, or the
settling cron (``wac.message._wac_cron_settle_attempts``) marks it *uncertain* for a person
to check.
"""

import json
import time
from typing import NamedTuple

from odoo import fields, models
from odoo.exceptions import UserError

from odoo.addons.queue_job.exception import RetryableJobError

from ..tools.wa_cloud import errors as wa_errors
from ..tools.wa_cloud import phone as wa_phone

REPLY_KEY_PREFIX = "wacreply"


class ReplyOutcome(NamedTuple):
    """What became of one reply, as the side cursor knows it: the request's own transaction
    started before the reply's row was committed and cannot read it.

    :ivar reason: why it failed (Meta's refusal, explained), else ``None``
    :ivar uncertain: the answer was lost: Meta may have accepted it
    """

    message_id: int
    reason: str | None = None
    uncertain: bool = False


class WacConversation(models.Model):
    """Send a person's reply (text or template) to the customer of a conversation."""

    _inherit = "wac.conversation"  # pylint: disable=consider-merging-classes-inherited

    def _wac_reply_key(self, token):
        """The send key of one reply of the composer ``token``."""
        self.ensure_one()
        return "%s:%d:%s" % (REPLY_KEY_PREFIX, self.id, token)

    def _wac_recipient(self):
        """What Meta is sent in ``to``: the contact's WhatsApp ID, else its number."""
        self.ensure_one()
        contact = self.contact_id
        return contact.wa_id or (wa_phone.wa_digits(contact.e164) if contact.e164 else None)

    def _wac_reply_blocker(self, free_form):
        """Why no reply can go to this customer now, or ``None``.

        The automation mode and the kill switch are not read: they govern the automated
        appointment messages, not a person answering a customer.

        :param bool free_form: a text reply (template messages are allowed outside the window)
        """
        self.ensure_one()
        _ = self.env._
        account = self.company_id.sudo().wa_account_id
        if not account:
            return _("%(company)s has no WhatsApp account.", company=self.company_id.name)
        if account.state != "connected":
            return _("The WhatsApp account of %(company)s is not connected: reconnect it "
                     "before answering.", company=self.company_id.name)
        if self.contact_id.opted_out:
            return _("%(name)s opted out of WhatsApp messages from %(company)s: nothing is "
                     "sent.", name=self.display_name, company=self.company_id.name)
        if not self._wac_recipient():
            return _("%(name)s has no WhatsApp number.", name=self.display_name)
        if free_form and not self.window_open:
            return _("More than 24 h since the customer wrote: WhatsApp only accepts a "
                     "template now. Choose a template.")
        return None

    def _wac_send_reply(self, key, payload, vals):
        """Send one reply; its outcome is recorded on its ``wac.message`` and returned.

        :param str key: :meth:`_wac_reply_key`; a row with this key means already sent
        :param dict payload: the JSON body of the request, without ``to``
        :param dict vals: ``wac.message`` values of the reply (``message_type``, ``body``)
        :raises UserError: the reply cannot go now (nothing was sent)
        :rtype: ReplyOutcome
        """
        self.ensure_one()
        Message = self.env["wac.message"].sudo()
        earlier = Message.search([("company_id", "=", self.company_id.id),
                                  ("wa_send_key", "=", key)], limit=1)
        if earlier:  # pressed twice: the first press decides
            return ReplyOutcome(earlier.id, earlier.error_title if earlier.status == "failed"
                                else None, earlier.wa_attempt_open)
        blocker = self._wac_reply_blocker(payload.get("type") != "template") \
            or self._wac_reply_cap_refusal(payload)
        if blocker:
            raise UserError(blocker)
        self._wac_check_no_open_reply()
        account = self.company_id.sudo().wa_account_id
        to = self._wac_recipient()
        payload = dict(payload, messaging_product="whatsapp", recipient_type="individual",
                       to=to, biz_opaque_callback_data=key)
        vals = dict(vals, company_id=self.company_id.id, account_id=account.id,
                    contact_id=self.contact_id.id, direction="out", source="api",
                    wa_send_key=key, biz_opaque_callback_data=key, recipient_input=to,
                    wa_partner_id=self.partner_id.id, res_model=self._name, res_id=self.id,
                    message_at=fields.Datetime.now(),
                    reply_outside_window=self._wac_reply_starts_conversation(payload),
                    payload=json.dumps(payload, ensure_ascii=False, indent=1))
        message_id, refusal = self._wac_deliver_reply(account, to, payload, vals)
        Message.invalidate_model()
        self.invalidate_recordset()
        if refusal is None:
            return ReplyOutcome(message_id)
        if isinstance(refusal, wa_errors.TransportError):
            # Meta may have accepted it: the attempt stays open (see the module docstring).
            return ReplyOutcome(message_id, uncertain=True)
        return ReplyOutcome(message_id, reason=self._wac_reply_refused(message_id, refusal))

    def _wac_check_no_open_reply(self):
        """A reply whose answer was lost may have reached the customer: the next one waits
        for its outcome, so that nobody sends the same words again thinking it failed."""
        open_reply = self.env["wac.message"].sudo().search_count([
            ("conversation_id", "=", self.id), ("source", "=", "api"),
            ("wa_attempt_open", "=", True), ("res_model", "=", self._name)])
        if open_reply:
            raise UserError(self.env._(
                "The connection to Meta dropped during the previous reply: WhatsApp may have "
                "delivered it. Wait for its status in the thread (it is settled within a few "
                "minutes) before sending again."))

    def _wac_deliver_reply(self, account, to, payload, vals):
        """Take a slot under Meta's pacing (``_wac_reply_slot``), commit the intent, call Meta,
        commit the outcome; return ``(message id, refusal or None)``."""
        client = account._wac_client()
        Message = self.env["wac.message"]
        with self.env.registry.cursor() as side:
            # Meta's pacing, shared with the automation (wac_conversation_cap.py).
            pace = self._wac_reply_slot(side, account, to)
            try:
                message_id = Message._wac_write_intent(
                    side, Message.browse(), vals, account, to, self.partner_id)
            except RetryableJobError:  # Send pressed twice at once: the other press sends
                raise UserError(self.env._(
                    "This reply is already being sent: its status will show in the "
                    "thread.")) from None
            side.commit()  # pylint: disable=invalid-commit
            if pace.due > time.monotonic():
                time.sleep(pace.due - time.monotonic())
            try:
                result = client.send_message(account.phone_number_id, payload)
            except wa_errors.WaCloudError as error:
                return message_id, error
            Message._wac_close_attempt(message_id, {
                "wamid": result.wamid, "status": "accepted", "wa_attempt_open": False,
                "recipient_wa_id": result.wa_id, "status_at": fields.Datetime.now(),
            }, cr=side)
        return message_id, None

    def _wac_reply_refused(self, message_id, error):
        """Record on the reply why Meta refused it (nothing was sent); return the reason."""
        Message = self.env["wac.message"]
        vals = Message._wac_explain_error({
            "status": "failed", "wa_attempt_open": False, "error_code": error.code or False,
            "error_title": (error.title or str(error))[:200],
            "error_details": self.company_id.sudo().wa_account_id._wac_error_advice(error)})
        Message._wac_close_attempt(message_id, vals)
        return vals["error_title"]
