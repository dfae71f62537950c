"""Held, not lost: appointment messages that come due while their company cannot send.

While a company is paused or the kill switch is on, the send job does not skip a message
that comes due: it records it as *held*, with the reason (``wac.send.sender._wac_hold``).
When the stop ends (Resume, the kill switch going off) the held messages are released: each
goes back to its send job, under its own send key, which checks again that it still makes
sense (the appointment exists, is active and in the future, the customer has not opted out,
the message type still fits) and then sends it or *drops* it with the reason. The send key
keeps any message from going twice; a person may also drop them all.
"""

import json

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools.wa_cloud.send_key import parse_send_key


class WacMessage(models.Model):
    """The *held* and *dropped* states of appointment messages, and their release."""

    _inherit = "wac.message"  # pylint: disable=consider-merging-classes-inherited

    status = fields.Selection(selection_add=[
        ("held", "Held (company paused)"), ("dropped", "Dropped (not sent)")],
        ondelete={"held": "set null", "dropped": "set null"})
    wa_held_reason = fields.Char("Held because", readonly=True, copy=False)
    wa_held_since = fields.Datetime("Held since", readonly=True, copy=False, index=True)

    @api.model
    def _wac_hold_row(self, out, reason):
        """Record the message of a send job as held (``out``: the sender's ``Outgoing``)."""
        vals = {
            "status": "held", "wa_held_reason": reason, "wa_attempt_open": False,
            "wa_retry_confirmed": False, "error_code": False, "error_title": False,
            "error_details": False,
        }
        if out.message:
            if not out.message.wa_held_since:
                vals["wa_held_since"] = fields.Datetime.now()
            out.message.sudo().write(vals)
            return out.message
        return self.sudo().create(dict(
            vals, company_id=out.company.id, account_id=out.account.id, direction="out",
            source="api", message_type="template", res_model="calendar.event",
            res_id=out.data["id"], wa_send_key=out.key, wa_kind=out.kind,
            wa_partner_id=out.partner.id, wa_start_key=out.start,
            wa_snapshot=json.dumps(out.snapshot) if out.snapshot else False,
            wa_held_since=fields.Datetime.now(), message_at=fields.Datetime.now()))

    def _wac_drop(self, reason):
        """These held messages will not be sent: *dropped*, with the reason."""
        if self:
            self.sudo().write({"status": "dropped", "error_code": False,
                               "error_title": reason[:200], "error_details": reason})

    @api.model
    def _wac_release_held(self, companies=None):
        """Send again the held messages of the companies whose stop has ended (all companies
        when ``companies`` is ``None``); each job re-checks its message first. A company
        stopped for good meanwhile (automation disabled) gets its held messages dropped by
        their jobs, with the reason, rather than held forever.

        :returns: the number of messages released
        """
        domain = [("status", "=", "held"), ("wa_send_key", "!=", False)]
        if companies is not None:
            domain.append(("company_id", "in", companies.ids))
        held = self.sudo().search(domain)
        Send = self.env["wac.send"]
        free = held.company_id.filtered(lambda c: not self._wac_holding(c))
        jobs = [self._wac_release_job(message) for message in held
                if message.company_id in free]
        Send._wac_enqueue_many([job for job in jobs if job])
        return len(jobs)

    @api.model
    def _wac_holding(self, company):
        """Whether ``company`` still holds its messages (paused, or the kill switch)."""
        blocker = self.env["wac.send"]._wac_company_blocker(company)
        return bool(blocker and blocker.holds)

    def _wac_release_job(self, message):
        """The send job of a held message (the one its send key names), or ``None``."""
        key = parse_send_key(message.wa_send_key)
        if not key:
            return None
        snapshot = json.loads(message.wa_snapshot) if message.wa_snapshot else None
        event = self.env["calendar.event"].sudo().with_context(active_test=False).browse(
            key.event_id).exists()
        Send = self.env["wac.send"]
        return Send._wac_send_job(
            message.company_id, key.event_id, key.kind, message.wa_partner_id, key.start,
            snapshot, title=event.name or (snapshot or {}).get("name", ""))

    @api.model
    def _wac_cron_release_held(self):
        """Every few minutes: release what a kill switch switched off by other means than
        the settings (or a crash between Resume and its jobs) left held."""
        return self._wac_release_held()

    @api.model
    def _wac_drop_held(self, accounts, reason):
        """A person drops every held message of ``accounts``; returns how many."""
        if not self.env.user.has_group("whatsapp_coexistence.whatsapp_coexistence_group_manager"):
            raise UserError(self.env._("Only WhatsApp managers can drop held messages."))
        held = self.sudo().search([("status", "=", "held"),
                                   ("account_id", "in", accounts.ids)])
        held._wac_drop(reason)
        return len(held)
