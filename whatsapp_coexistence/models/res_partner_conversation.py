from odoo import fields, models

GROUP = "whatsapp_coexistence.whatsapp_coexistence_group_user"


class ResPartner(models.Model):
    """The WhatsApp conversations of a customer, one per company that talks to them."""

    _inherit = "res.partner"  # pylint: disable=consider-merging-classes-inherited

    wa_conversation_ids = fields.One2many("wac.conversation", "partner_id",
                                          string="WhatsApp conversations",
                                          groups=GROUP)
    wa_conversation_count = fields.Integer("WhatsApp conversation count",
                                           compute="_compute_wa_conversation_count",
                                           groups=GROUP)

    def _compute_wa_conversation_count(self):
        for partner in self:
            partner.wa_conversation_count = len(partner.wa_conversation_ids)

    def action_wa_conversations(self):
        self.ensure_one()
        return self.env["wac.conversation"]._wac_open_action(self.wa_conversation_ids)
