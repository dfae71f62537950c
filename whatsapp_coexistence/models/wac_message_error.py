from odoo import api, models

#: "User stopped marketing messages": the same effect as their ``user_preferences`` stop.
MARKETING_STOPPED = 131050
#: "Re-engagement message": more than 24 hours since the person last wrote.
OUTSIDE_WINDOW = 131047


class WacMessage(models.Model):
    """Meta errors that say something about the person, applied wherever a message records
    its error code (the send job's answer or a ``failed`` status webhook)."""

    _inherit = "wac.message"

    @api.model_create_multi
    def create(self, vals_list):
        vals_list = [self._wac_explain_error(vals) for vals in vals_list]
        messages = super().create(vals_list)
        messages._wac_mark_people()
        return messages

    def write(self, vals):
        vals = self._wac_explain_error(vals)
        res = super().write(vals)
        if vals.get("error_code") == MARKETING_STOPPED:
            self._wac_mark_people()
        return res

    def _wac_explain_error(self, vals):
        """Meta's title for 131047 does not say what to do: say it."""
        if vals.get("error_code") == OUTSIDE_WINDOW:
            vals = dict(vals, error_title=self.env._(
                "Outside the 24 h window: a template is required"))
        return vals

    def _wac_mark_people(self):
        contacts = self.filtered(lambda m: m.error_code == MARKETING_STOPPED).contact_id
        contacts.filtered(lambda c: not c.marketing_opt_out).sudo().write(
            {"marketing_opt_out": True})
