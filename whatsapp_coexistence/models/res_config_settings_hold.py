from odoo import models


class ResConfigSettings(models.TransientModel):
    """The kill switch going off releases the messages it held."""

    _inherit = "res.config.settings"  # pylint: disable=consider-merging-classes-inherited

    def set_values(self):
        Send = self.env["wac.send"]
        was_on = Send._wac_kill_switch()
        res = super().set_values()
        if was_on and not Send._wac_kill_switch():
            self.env["wac.message"]._wac_release_held()
        return res
