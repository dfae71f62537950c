from odoo import api, fields, models

#: Where a message comes from, as a thread shows it.
ORIGINS = [
    ("customer", "Customer"),
    ("reply", "Reply from Odoo"),
    ("automated", "Automated"),
    ("app", "Business App"),
    ("history", "History"),
]


class WacMessage(models.Model):
    """Every message belongs to the conversation of its company and contact."""

    _inherit = "wac.message"  # pylint: disable=consider-merging-classes-inherited

    conversation_id = fields.Many2one("wac.conversation", index=True, readonly=True,
                                      ondelete="set null", check_company=True)
    origin = fields.Selection(ORIGINS, compute="_compute_origin")
    attachment_ids = fields.Many2many("ir.attachment", string="Files",
                                      compute="_compute_attachment_ids")
    reply_outside_window = fields.Boolean(
        "Template outside the window", readonly=True, copy=False,
        help="A template a person sent after the customer's 24 h window closed: the business "
        "started this conversation, so it counts toward the daily cap per person like the "
        "automated messages.")

    @api.depends("source", "wa_send_key")
    def _compute_origin(self):
        for message in self:
            if message.source == "api":
                # Replies from a person carry no appointment send key.
                message.origin = "automated" if message.res_model == "calendar.event" \
                    else "reply"
            else:
                message.origin = message.source

    def _compute_attachment_ids(self):
        """The files of the messages (inbound media downloaded, files sent)."""
        attachments = self.env["ir.attachment"].search([
            ("res_model", "=", self._name), ("res_id", "in", self.ids)])
        for message in self:
            message.attachment_ids = attachments.filtered(lambda a, m=message: a.res_id == m.id)

    @api.model_create_multi
    def create(self, vals_list):
        messages = super().create(vals_list)
        messages._wac_link_conversations()
        return messages

    def write(self, vals):
        before = self.conversation_id if "contact_id" in vals else self.env["wac.conversation"]
        res = super().write(vals)
        refreshed = self._wac_link_conversations() if "contact_id" in vals else before
        # Each conversation once: the one a message left shows its new last message too.
        stale = before | self.conversation_id if "message_at" in vals else before
        (stale - refreshed).sudo()._wac_refresh()
        return res

    @api.model
    def _wac_insert_history(self, vals_list):
        messages = super()._wac_insert_history(vals_list)
        messages._wac_link_conversations()
        return messages

    def _wac_link_conversations(self):
        """Give these messages the conversation of their contact (created when missing),
        then refresh what the conversations show; return the conversations refreshed.

        One ``UPDATE`` for the whole batch: a history batch holds 1,000 messages of many
        customers, and an ORM write per customer would cost a query each.
        """
        messages = self.sudo().filtered("contact_id")
        if not messages:
            return self.env["wac.conversation"]
        messages.flush_recordset(["contact_id", "conversation_id"])
        Conversation = self.env["wac.conversation"].sudo()
        Conversation._wac_create_missing(messages.contact_id.ids)
        self.env.cr.execute("""
            UPDATE wac_message m SET conversation_id = v.id
              FROM wac_conversation v
             WHERE m.id = ANY(%s) AND v.company_id = m.company_id
               AND v.contact_id = m.contact_id AND m.conversation_id IS DISTINCT FROM v.id
         RETURNING v.id
        """, [messages.ids])
        linked = {row[0] for row in self.env.cr.fetchall()}
        messages.invalidate_recordset(["conversation_id"])
        linked = Conversation.browse(sorted(linked))
        linked._wac_refresh()
        return linked

    def _wac_on_inbound(self):
        res = super()._wac_on_inbound()
        for conversation, messages in self.sudo().grouped("conversation_id").items():
            if conversation:
                conversation._wac_notify_inbound(messages)
        return res
