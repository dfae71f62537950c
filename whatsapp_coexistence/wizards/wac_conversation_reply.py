import uuid

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools.wa_cloud import template_params as tp
from ..tools.wa_cloud.client import GraphClient
from ..tools.wa_cloud.errors import WaCloudError

#: Sources a template parameter of a conversation can be filled from without an appointment.
_PREFILL = {"attendee_name", "attendee_first_name", "company_name"}


class WacConversationReply(models.TransientModel):
    """The reply composer of a conversation: free text while the customer's 24 h window is
    open, an approved template (with its parameters and a preview) at any time."""

    _name = "wac.conversation.reply"
    _description = "WhatsApp reply composer"

    conversation_id = fields.Many2one("wac.conversation", required=True, readonly=True,
                                      ondelete="cascade")
    company_id = fields.Many2one(related="conversation_id.company_id")
    # The composer's identity: a second press of Send finds the first reply by it.
    token = fields.Char(default=lambda self: uuid.uuid4().hex, readonly=True)
    window_open = fields.Boolean(related="conversation_id.window_open")
    window_expires_at = fields.Datetime(related="conversation_id.window_expires_at")
    time_left = fields.Char(compute="_compute_time_left")
    mode = fields.Selection([("text", "Free text"), ("template", "Template")], required=True,
                            compute="_compute_mode", store=True, readonly=False,
                            precompute=True)
    body = fields.Text("Message")
    attachment_ids = fields.Many2many(
        "ir.attachment", string="Attachments",
        help="Files sent after the text, each as its own WhatsApp message.")
    template_id = fields.Many2one(
        "wac.template", domain="[('company_id', '=', company_id), ('status', '=', 'APPROVED')]")
    param_ids = fields.One2many("wac.conversation.reply.param", "reply_id",
                                string="Template parameters")
    preview = fields.Text(compute="_compute_preview")

    @api.depends("conversation_id")
    def _compute_mode(self):
        for reply in self:
            reply.mode = "text" if reply.conversation_id.window_open else "template"

    @api.depends("window_expires_at")
    def _compute_time_left(self):
        now = self.env["wac.send"]._wac_now()
        for reply in self:
            expires = reply.window_expires_at
            if not expires or expires <= now:
                reply.time_left = self.env._(
                    "Closed: more than 24 h since the customer wrote. Only a template can be "
                    "sent.")
                continue
            minutes = int((expires - now).total_seconds() // 60)
            reply.time_left = self.env._("%(hours)s h %(minutes)s min left to answer freely",
                                         hours=minutes // 60, minutes=minutes % 60)

    @api.depends("mode", "body", "template_id", "param_ids.value")
    def _compute_preview(self):
        for reply in self:
            if reply.mode == "template" and reply.template_id:
                reply.preview = reply.template_id._wac_spec().hydrate(reply._wac_values())
            else:
                reply.preview = reply.body

    @api.onchange("template_id")
    def _onchange_template_id(self):
        lines = self.env["wac.template.mapping"]._wac_guess_lines(self.template_id) \
            if self.template_id else []
        rendered = self._wac_known_values()
        self.param_ids = [fields.Command.clear()] + [fields.Command.create({
            "component": line["component"], "name": line["name"],
            "value": rendered.get(line["source"], "") if line["source"] in _PREFILL else "",
        }) for line in lines]

    def _wac_known_values(self):
        """What a template can say of this customer without an appointment."""
        name = (self.conversation_id.partner_id.name or self.conversation_id.contact_id
                .profile_name or "").strip()
        return {"attendee_name": name, "attendee_first_name": name.split()[0] if name else "",
                "company_name": self.conversation_id.company_id.name or ""}

    def _wac_values(self):
        return {"%s:%s" % (line.component, line.name): line.value or ""
                for line in self.param_ids}

    # ------------------------------------------------------------
    # SEND
    # ------------------------------------------------------------

    def action_send(self):
        """Send the reply (the text, then each file as its own message); the thread shows
        each with its status, or why it failed."""
        self.ensure_one()
        conversation = self.conversation_id
        key = conversation._wac_reply_key(self.token)
        if self.mode == "template":
            outcomes = [conversation._wac_send_reply(key, *self._wac_template_payload())]
        else:
            outcomes = []
            if (self.body or "").strip() or not self.attachment_ids:
                outcomes.append(conversation._wac_send_reply(key, *self._wac_text_payload()))
            outcomes += self._wac_send_files(key)
        return self._wac_outcome_action(outcomes)

    def _wac_send_files(self, key):
        """Upload and send each attachment (free-form: inside the window only); the file is
        kept on its message, where the thread shows it."""
        conversation = self.conversation_id
        blocker = conversation._wac_reply_blocker(free_form=True)
        if blocker and self.attachment_ids:
            raise UserError(blocker)
        account = conversation.company_id.sudo().wa_account_id
        outcomes = []
        for index, attachment in enumerate(self.attachment_ids, start=1):
            file_key = "%s:%d" % (key, index)
            try:
                media = account._wac_media_message(attachment, conversation._wac_recipient(),
                                                   biz_opaque_callback_data=file_key)
            except WaCloudError as error:  # the upload: nothing was sent
                raise UserError(account._wac_error_advice(error)) from None
            outcome = conversation._wac_send_reply(file_key, media.payload, media.vals)
            attachment.sudo().copy({"res_model": "wac.message", "res_id": outcome.message_id})
            outcomes.append(outcome)
        return outcomes

    def _wac_text_payload(self):
        body = (self.body or "").strip()
        if not body:
            raise UserError(self.env._("Write the message first."))
        if len(body) > 4096:
            raise UserError(self.env._("WhatsApp accepts at most 4096 characters in a message."))
        return ({"type": "text", "text": {"body": body, "preview_url": False}},
                {"message_type": "text", "body": body})

    def _wac_template_payload(self):
        template = self.template_id
        if not template:
            raise UserError(self.env._("Choose a template."))
        spec = template._wac_spec()
        if spec.problems:
            raise UserError(self.env._("This template cannot be sent from a conversation: "
                                       "%(problems)s", problems="; ".join(spec.problems)))
        values = {key: tp.sanitize_param(value, limit=tp.BODY_PARAM_LIMIT)
                  for key, value in self._wac_values().items()}
        missing = [line.name for line in self.param_ids if not (line.value or "").strip()]
        problems = spec.check_keys(values)
        if missing or problems:
            raise UserError(self.env._("Fill every parameter of the template: %(missing)s",
                                       missing=", ".join(missing) or "; ".join(problems)))
        values = spec.fit(values)
        payload = GraphClient.build_template_payload(
            None, template.name, template.language, spec.build_components(values))
        del payload["to"]
        return payload, {"message_type": "template", "body": spec.hydrate(values),
                         "wa_template_id": template.id}

    def _wac_outcome_action(self, outcomes):
        """Close the composer and say what happened to the reply."""
        _ = self.env._
        failed = [o.reason for o in outcomes if o.reason]
        if failed:
            text, kind = _("Not sent: %(reason)s", reason="; ".join(failed)), "danger"
        elif any(o.uncertain for o in outcomes):
            text, kind = _("The connection to Meta dropped: WhatsApp may have received the "
                           "reply. It is not sent again; its status will show in the "
                           "thread."), "warning"
        else:
            text, kind = _("Reply sent."), "success"
        return {"type": "ir.actions.client", "tag": "display_notification", "params": {
            "message": text, "type": kind, "sticky": kind != "success",
            "next": {"type": "ir.actions.act_window_close"}}}


class WacConversationReplyParam(models.TransientModel):
    """One parameter of the template chosen in the composer."""

    _name = "wac.conversation.reply.param"
    _description = "WhatsApp reply template parameter"
    _order = "id"

    reply_id = fields.Many2one("wac.conversation.reply", required=True, ondelete="cascade")
    component = fields.Selection([("header", "Header"), ("body", "Body")], required=True,
                                 default="body", readonly=True)
    name = fields.Char("Parameter", required=True, readonly=True)
    value = fields.Char()
