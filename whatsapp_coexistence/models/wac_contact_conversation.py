from odoo import models


class WacContact(models.Model):
    """The contact's conversation, one click away."""

    _inherit = "wac.contact"  # pylint: disable=consider-merging-classes-inherited

    def action_wa_conversation(self):
        self.ensure_one()
        conversation = self.env["wac.conversation"]._wac_for_contacts(self)[self.id]
        return self.env["wac.conversation"]._wac_open_action(conversation.with_env(self.env))
