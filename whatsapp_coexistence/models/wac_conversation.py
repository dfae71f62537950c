from odoo import api, fields, models

#: Who is told when a customer writes (``wac.account.conversation_notify``).
NOTIFY_MODES = [
    ("team", "The WhatsApp team of the company"),
    ("organizer", "The organizer of the customer's next appointment"),
    ("assigned", "The user assigned to the conversation"),
]


class WacConversation(models.Model):
    """One WhatsApp thread per customer per company: every message to or from the customer,
    whichever side or device it came from, and who has to answer.

    The messages are ``wac.message`` rows (their ``conversation_id``); the conversation's own
    chatter only carries the notifications of inbound messages, so people get them in their
    Discuss inbox.
    """

    _name = "wac.conversation"
    _description = "WhatsApp conversation"
    _inherit = ["mail.thread"]
    _order = "needs_answer desc, last_message_at desc, id desc"
    _check_company_auto = True

    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    contact_id = fields.Many2one("wac.contact", required=True, readonly=True, index=True,
                                 ondelete="cascade", check_company=True)
    partner_id = fields.Many2one(related="contact_id.partner_id", store=True, index=True,
                                 string="Customer")
    name = fields.Char(related="contact_id.display_name", string="Customer name")
    opted_out = fields.Boolean(related="contact_id.opted_out")
    window_expires_at = fields.Datetime(related="contact_id.window_expires_at",
                                        string="Service window ends")
    window_open = fields.Boolean("Window open", compute="_compute_window_open",
                                 search="_search_window_open")
    message_ids_wac = fields.One2many("wac.message", "conversation_id", string="Thread",
                                      readonly=True)
    last_message_at = fields.Datetime(readonly=True, index=True)
    last_inbound_at = fields.Datetime(readonly=True)
    last_outbound_at = fields.Datetime(readonly=True)
    last_notified_at = fields.Datetime(
        readonly=True, help="When people were last told that the customer wrote: one "
        "notification per burst of messages, until someone answers.")
    needs_answer = fields.Boolean(
        readonly=True, index=True,
        help="The customer wrote last: set by an inbound message, cleared by an answer from "
        "Odoo or from the Business App, or by Mark as answered.")
    user_id = fields.Many2one("res.users", string="Assigned to", tracking=True,
                              domain="[('share', '=', False), ('company_ids', 'in', company_id)]")

    _sql_constraints = [
        ("contact_uniq", "unique(company_id, contact_id)",
         "A customer has one conversation per company."),
    ]

    @api.depends("window_expires_at")
    def _compute_window_open(self):
        now = self.env["wac.send"]._wac_now()
        for conversation in self:
            conversation.window_open = bool(
                conversation.window_expires_at and conversation.window_expires_at > now)

    def _search_window_open(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise NotImplementedError(self.env._("Unsupported search on the service window."))
        now = self.env["wac.send"]._wac_now()
        is_open = (operator == "=") == value
        if is_open:
            return [("window_expires_at", ">", now)]
        return ["|", ("window_expires_at", "=", False), ("window_expires_at", "<=", now)]

    @api.depends("contact_id")
    def _compute_display_name(self):
        for conversation in self:
            conversation.display_name = conversation.contact_id.display_name or "?"

    # ------------------------------------------------------------
    # LINKING MESSAGES
    # ------------------------------------------------------------

    @api.model
    def _wac_for_contacts(self, contacts):
        """``{contact id: conversation}``, created where missing (sudo: the system's rows)."""
        self._wac_create_missing(contacts.ids)
        return {c.contact_id.id: c for c in self.sudo().search(
            [("contact_id", "in", contacts.ids)])}

    @api.model
    def _wac_create_missing(self, contact_ids):
        """Create the conversations these contacts lack, in one ``INSERT``.

        Not through ``create``: mail.thread would log a "created" note (this chatter holds
        the team's notes and the inbound notifications only), make whoever's job or request
        created it a follower (told of every message of each customer whose appointment they
        booked, whatever ``conversation_notify`` says) and write the stored partner in an
        ``UPDATE`` after the insert, in every send to a new customer.

        Two transactions creating one contact's conversation at once: the second waits for
        the first; under REPEATABLE READ (webhook jobs) it then fails with a serialization
        error, unlogged, and its job is retried and finds the row; under READ COMMITTED (the
        send's side cursor) it finds the row at once.
        """
        if not contact_ids:
            return
        self.env["wac.contact"].flush_model(["company_id", "partner_id"])
        self.env.cr.execute("""
            INSERT INTO wac_conversation (company_id, contact_id, partner_id, create_date,
                                          write_date, create_uid, write_uid)
            SELECT c.company_id, c.id, c.partner_id, now() at time zone 'UTC',
                   now() at time zone 'UTC', %(uid)s, %(uid)s
              FROM wac_contact c
             WHERE c.id = ANY(%(ids)s)
            ON CONFLICT (company_id, contact_id) DO NOTHING
        """, {"uid": self.env.uid, "ids": list(contact_ids)}, log_exceptions=False)

    def _wac_refresh(self):
        """Last message, last inbound and outbound messages and *needs answer*, from the
        messages.

        One ``UPDATE`` without the ORM's logging: the webhook jobs and the send job may
        update one conversation at once, and the one that loses the race is retried by
        its job (or its request) like any serialization failure, not reported as a bad
        query.
        """
        if not self:
            return
        self.env["wac.message"].flush_model(["conversation_id", "message_at", "direction"])
        self.env.cr.execute("""
            UPDATE wac_conversation v
               SET last_message_at = m.last, last_inbound_at = m.last_in,
                   last_outbound_at = m.last_out,
                   needs_answer = m.last_in IS NOT NULL
                                  AND (m.last_out IS NULL OR m.last_in > m.last_out),
                   write_date = now() at time zone 'UTC'
              FROM (SELECT conversation_id, max(message_at) AS last,
                           max(message_at) FILTER (WHERE direction = 'in') AS last_in,
                           max(message_at) FILTER (WHERE direction = 'out') AS last_out
                      FROM wac_message WHERE conversation_id = ANY(%s)
                     GROUP BY conversation_id) m
             WHERE v.id = m.conversation_id
               AND (v.last_message_at, v.last_inbound_at, v.last_outbound_at)
                   IS DISTINCT FROM (m.last, m.last_in, m.last_out)
        """, [self.ids], log_exceptions=False)
        self.invalidate_recordset(["last_message_at", "last_inbound_at", "last_outbound_at",
                                   "needs_answer"])

    def init(self):
        """Link the messages recorded before conversations existed (and any left unlinked):
        one conversation per (company, contact), on install and on every upgrade."""
        cr = self.env.cr
        cr.execute("SELECT DISTINCT contact_id FROM wac_message "
                   "WHERE conversation_id IS NULL AND contact_id IS NOT NULL")
        self._wac_create_missing([row[0] for row in cr.fetchall()])
        cr.execute("""
            UPDATE wac_message m SET conversation_id = v.id
              FROM wac_conversation v
             WHERE m.conversation_id IS NULL AND v.company_id = m.company_id
               AND v.contact_id = m.contact_id
         RETURNING v.id
        """)
        touched = {row[0] for row in cr.fetchall()}
        if touched:
            self.browse(sorted(touched))._wac_refresh()

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_reply(self):
        """Open the reply composer."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window", "res_model": "wac.conversation.reply",
            "name": self.env._("Reply on WhatsApp"), "view_mode": "form", "target": "new",
            "context": {"default_conversation_id": self.id},
        }

    def action_mark_answered(self):
        self.write({"needs_answer": False, "last_notified_at": False})

    def action_assign_to_me(self):
        self.write({"user_id": self.env.uid})

    @api.model
    def _wac_open_action(self, conversations, default_name=None):
        """An action showing ``conversations``: the form for one, the list otherwise."""
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "whatsapp_coexistence.wac_conversation_action")
        if len(conversations) == 1:
            action.update(res_id=conversations.id, view_mode="form",
                          views=[(False, "form")])
        else:
            action["domain"] = [("id", "in", conversations.ids)]
        if default_name:
            action["name"] = default_name
        return action
