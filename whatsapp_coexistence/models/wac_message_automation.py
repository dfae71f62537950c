import json

from odoo import api, fields, models
from odoo.exceptions import UserError

from .wac_send import parse_send_key
from .wac_template_mapping import MESSAGE_TYPES


class WacMessage(models.Model):
    """Appointment messages on ``wac.message``: send keys, payloads, attempts, retry, replies.

    The send pipeline itself is ``wac.send``; this extension only adds what a message row must
    remember for it (see ``wac_send`` for the crash window these fields close).
    """

    _inherit = "wac.message"

    payload = fields.Text(readonly=True, help="The exact JSON sent to Meta (or that a dry run "
                          "would have sent). It holds no credential.")
    # No index of its own: every lookup also filters on the company, and send_key_uniq's
    # (company_id, wa_send_key) index serves it (one index less to update on every send).
    wa_send_key = fields.Char("Send key", readonly=True, copy=False,
                              help="Event, message type, attendee and start time: one send per "
                              "key, ever. Sent to Meta as biz_opaque_callback_data.")
    wa_kind = fields.Selection(MESSAGE_TYPES, string="Appointment message", readonly=True)
    wa_partner_id = fields.Many2one("res.partner", string="Attendee", readonly=True,
                                    index=True)
    wa_template_id = fields.Many2one("wac.template", string="Template", readonly=True)
    wa_start_key = fields.Char(readonly=True)
    wa_snapshot = fields.Text(readonly=True, help="Data of a deleted appointment.")
    wa_attempt_open = fields.Boolean(
        "Outcome unknown", readonly=True, copy=False,
        help="The send was committed as an intent and Meta's answer is not recorded yet.")
    wa_attempt_at = fields.Datetime("Last attempt", readonly=True, copy=False)
    wa_attempts = fields.Integer("Failed attempts", readonly=True, copy=False)
    wa_retry_confirmed = fields.Boolean(readonly=True, copy=False)
    wa_can_retry = fields.Boolean(compute="_compute_wa_can_retry")

    _sql_constraints = [
        ("send_key_uniq", "unique(company_id, wa_send_key)",
         "An appointment message is sent once."),
    ]

    @api.depends("status", "wamid", "wa_send_key", "source")
    def _compute_wa_can_retry(self):
        for message in self:
            message.wa_can_retry = bool(
                message.source == "api" and message.status == "failed" and not message.wamid
                and message.wa_send_key and message.res_model == "calendar.event")

    def _wac_on_inbound(self):
        """Replies to appointment messages update the attendee (button or numbered answer)."""
        result = super()._wac_on_inbound()
        Send = self.env["wac.send"]
        for message in self:
            if message.direction == "in" and message.source == "customer" and (
                    message.body or message.button_payload):
                Send._wac_apply_reply(message)
        return result

    def action_wac_retry(self):
        """Send again a message that failed without reaching Meta, or whose outcome was
        uncertain, after a person checked it was not delivered. The retry gets Meta's full
        count of attempts again."""
        if not self.env.user.has_group("whatsapp_coexistence.whatsapp_coexistence_group_manager"):
            raise UserError(self.env._("Only WhatsApp managers can send a message again."))
        self.check_access("read")
        Send = self.env["wac.send"]
        for message in self:
            if not message.wa_can_retry:
                raise UserError(self.env._(
                    "Only failed appointment messages that Meta did not accept can be sent "
                    "again."))
            key = parse_send_key(message.wa_send_key)
            message.sudo().write({"wa_retry_confirmed": True, "wa_attempts": 0})
            snapshot = json.loads(message.wa_snapshot) if message.wa_snapshot else None
            event = self.env["calendar.event"].sudo().with_context(active_test=False).browse(
                key.event_id).exists()
            Send._wac_enqueue(Send._wac_send_job(
                message.company_id, key.event_id, key.kind, message.wa_partner_id, key.start,
                snapshot, title=event.name or (snapshot or {}).get("name", "")))
        return True

    @api.model
    def _wac_cron_attach_late_statuses(self):
        """Link status webhooks that raced with the commit of their message's ``wamid``.

        A status ingested while the send job was committing the wamid finds no message and
        stays an orphan (each transaction saw the other's work as not yet done); this sweeps
        them up.
        """
        self.env.cr.execute("""
            SELECT DISTINCT m.id
              FROM wac_message_status s
              JOIN wac_message m ON m.company_id = s.company_id AND m.wamid = s.wamid
             WHERE s.message_id IS NULL
             LIMIT 5000
        """)
        ids = [row[0] for row in self.env.cr.fetchall()]
        self.browse(ids)._wac_attach_orphan_statuses()
        return len(ids)
