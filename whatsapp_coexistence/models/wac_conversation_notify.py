from markupsafe import Markup

from odoo import fields, models


class WacConversation(models.Model):
    """Who is told that a customer wrote, and how often."""

    _inherit = "wac.conversation"  # pylint: disable=consider-merging-classes-inherited

    def _wac_notify_inbound(self, messages):
        """Post one inbox notification for a burst of inbound ``messages``: none while an
        earlier notification of this conversation is still unanswered."""
        self.ensure_one()
        messages = messages.filtered(
            lambda m: m.message_type not in ("system", "reaction", "unsupported"))
        if not messages or not self._wac_notify_due():
            return
        partners = self._wac_recipients().partner_id
        first = messages.sorted(lambda m: (m.message_at or fields.Datetime.now(), m.id))[0]
        # Not a <blockquote>: Discuss folds quotes behind "Read More".
        body = Markup("<p>%s <b>%s</b></p>") % (
            self.env._("%(name)s wrote on WhatsApp (%(company)s):",
                       name=self.display_name, company=self.company_id.name),
            first.body or "[%s]" % (first.message_type or "?"))
        self.message_post(body=body, partner_ids=partners.ids, subtype_xmlid="mail.mt_comment",
                          author_id=self.partner_id.id or None, message_type="notification")
        self.last_notified_at = fields.Datetime.now()

    def _wac_notify_due(self):
        """No notification yet, or an answer came after the last one."""
        return not self.last_notified_at or bool(
            self.last_outbound_at and self.last_outbound_at >= self.last_notified_at)

    def _wac_recipients(self):
        """The users the company's setting names for this conversation; the team when the
        setting names nobody (no appointment ahead, nobody assigned)."""
        account = self.company_id.sudo().wa_account_id
        mode = account.conversation_notify or "team"
        users = self.env["res.users"]
        if mode == "assigned":
            users = self.user_id
        elif mode == "organizer" and self.partner_id:
            users = self._wac_next_organizer()
        if not users:
            users = account.conversation_team_ids
        return users.filtered(lambda u: u.active and self.company_id in u.company_ids)

    def _wac_next_organizer(self):
        """The organizer of the customer's next appointment in this company."""
        event = self.env["calendar.event"].sudo().search([
            ("partner_ids", "in", self.partner_id.id),
            ("wa_company_id", "=", self.company_id.id),
            ("start", ">=", self.env["wac.send"]._wac_now())], order="start", limit=1)
        return event.user_id
