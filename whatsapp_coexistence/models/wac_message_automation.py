import json

from odoo import api, fields, models
from odoo.exceptions import UserError

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
        uncertain, after a person checked it was not delivered."""
        if not self.env.user.has_group("whatsapp_coexistence.whatsapp_coexistence_group_manager"):
            raise UserError(self.env._("Only WhatsApp managers can send a message again."))
        self.check_access("read")
        for message in self:
            if not message.wa_can_retry:
                raise UserError(self.env._(
                    "Only failed appointment messages that Meta did not accept can be sent "
                    "again."))
            _prefix, event_id, kind, partner_id, start = message.wa_send_key.split(":")
            message.sudo().write({"wa_retry_confirmed": True})
            self.env["wac.audit.log"]._wac_log(message, "retry", self.env._("Retry"),
                                               old=message.status)
            snapshot = json.loads(message.wa_snapshot) if message.wa_snapshot else None
            self.env["wac.send"].sudo().with_company(message.company_id).with_delay(
                channel="root.whatsapp", identity_key=message.wa_send_key,
                description="WhatsApp %s (retry)" % kind,
            )._wac_job_send(message.company_id.id, int(event_id), kind, int(partner_id), start,
                            snapshot)
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
