from odoo import api, models
from odoo.exceptions import UserError


class WacConversation(models.Model):
    """The conversation's chatter is the team's, not the customer's: the customer is answered
    on WhatsApp (the reply composer), never by e-mail from here.

    A receptionist who types an answer in the chatter's *Send message* believes the customer
    gets it; mail.thread would e-mail the followers instead, and the customer would wait for
    an answer that never comes. So a discussion message (a comment whose subtype is not
    internal) is refused with where to answer, whichever client posts it (the chatter, the
    full mail composer, a reply from the Discuss inbox), and so is a log note that mentions
    someone outside the team (the customer mentioned in a note is e-mailed it). Log notes
    and activities stay.
    """

    _inherit = "wac.conversation"  # pylint: disable=consider-merging-classes-inherited

    @api.returns("mail.message", lambda value: value.id)
    def message_post(self, *, message_type="notification", subtype_xmlid=None,
                     subtype_id=False, **kwargs):
        """Refuse a discussion message (it would e-mail the followers, not answer on
        WhatsApp) and a note that mentions someone outside the team (see the class).
        Notifications and the team's notes go through.

        :raises UserError: a comment that would reach people outside the team
        """
        if message_type == "comment" and not self._wac_internal_subtype(subtype_xmlid,
                                                                        subtype_id):
            raise UserError(self.env._(
                "A conversation's chatter does not write to the customer: answer with "
                "\"Reply on WhatsApp\". Use \"Log note\" for a note to your team."))
        outsiders = self._wac_outside_team(kwargs.get("partner_ids"))
        if message_type == "comment" and outsiders:
            raise UserError(self.env._(
                "A note in a conversation is for your team: %(names)s would receive it by "
                "e-mail. Remove the mention, and answer the customer with \"Reply on "
                "WhatsApp\".", names=", ".join(outsiders.mapped("display_name"))))
        return super().message_post(message_type=message_type, subtype_xmlid=subtype_xmlid,
                                    subtype_id=subtype_id, **kwargs)

    def _wac_internal_subtype(self, subtype_xmlid, subtype_id):
        """Whether the subtype a post names is internal (a log note): without one,
        message_post posts a note."""
        if subtype_id:
            subtype = self.env["mail.message.subtype"].sudo().browse(subtype_id)
        else:
            subtype = self.env.ref(subtype_xmlid or "mail.mt_note").sudo()
        return subtype.internal

    def _wac_outside_team(self, partner_ids):
        """The partners among ``partner_ids`` who are not internal users (sudo: a
        receptionist may not read every user)."""
        partners = self.env["res.partner"].sudo().browse(partner_ids or [])
        return partners.filtered(lambda p: not p.user_ids.filtered(lambda u: not u.share))

    def _thread_to_store(self, store, /, *, fields=None, request_list=None):
        """Tell the chatter to offer "Reply on WhatsApp" instead of "Send message"."""
        result = super()._thread_to_store(store, fields=fields, request_list=request_list)
        for conversation in self:
            store.add(conversation, {"wacReplyOnWhatsApp": True}, as_thread=True)
        return result
