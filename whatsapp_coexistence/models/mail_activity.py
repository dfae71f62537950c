from odoo import fields, models


class MailActivity(models.Model):
    """Activities of WhatsApp alerts: a person who marks one done (or cancels it)
    acknowledges the alert."""

    _inherit = "mail.activity"

    wac_alert_id = fields.Many2one("wac.alert", "WhatsApp alert", index="btree_not_null",
                                   ondelete="set null", readonly=True)

    def unlink(self):
        # Done and cancelled activities are both deleted. An alert that closed itself is
        # already closed here: only a person's action is recorded as an acknowledgement.
        # sudo: whoever may delete the activity may close its alert, WhatsApp user or not.
        alerts = self.sudo().wac_alert_id.filtered(lambda a: a.state == "open")
        if alerts:
            alerts._wac_acknowledge(self.env.user)
        return super().unlink()
