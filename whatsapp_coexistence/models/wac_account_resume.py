"""Resume: the way out of every pause, and the held messages it releases.

A company's automation is paused by Meta's answers (190 and the other tenant-blocking errors
of a send, ``wac.send.sender._wac_tenant_blocked``) and by its lifecycle webhooks
(``PARTNER_REMOVED`` and the other disconnections, ``ACCOUNT_OFFBOARDED``:
``_wac_apply_account_update``). Nothing resumes it silently: a new token, a successful Test
connection or a new Embedded Signup *offers* Resume (banner, notification, chatter), and a
WhatsApp manager resumes through the wizard (``wizards/wac_resume.py``), which checks first.
Meta's own ``ACCOUNT_RECONNECTED`` after an offboarding is the one exception: Meta says the
number is back, and the held messages are released as on Resume.
"""

from typing import NamedTuple

from odoo import api, fields, models
from odoo.exceptions import UserError

MANAGER_GROUP = "whatsapp_coexistence.whatsapp_coexistence_group_manager"


class ResumeCheck(NamedTuple):
    """What the Resume wizard shows: what blocks it, and what only deserves a look."""

    blockers: list
    warnings: list


class WacAccount(models.Model):
    """Resume, the offer of it, and the held messages of the account."""

    _inherit = "wac.account"  # pylint: disable=consider-merging-classes-inherited

    wac_held_count = fields.Integer("Held messages", compute="_compute_wac_held_count")
    wac_resume_offered = fields.Boolean(
        "Resume offered", compute="_compute_wac_resume_offered",
        help="Paused, and the connection works again: a manager may resume.")

    def _compute_wac_held_count(self):
        counts = dict(self.env["wac.message"].sudo()._read_group(
            [("account_id", "in", self.ids), ("status", "=", "held")],
            ["account_id"], ["__count"]))
        for account in self:
            account.wac_held_count = counts.get(account, 0)

    @api.depends("automation_paused", "state", "last_check_ok")
    def _compute_wac_resume_offered(self):
        for account in self:
            account.wac_resume_offered = (account.automation_paused
                                          and account.state == "connected"
                                          and account.last_check_ok)

    # ------------------------------------------------------------
    # THE OFFER
    # ------------------------------------------------------------

    def _wac_set_token(self, token):
        """A new token (pasted or from Embedded Signup) offers Resume to a paused company."""
        res = super()._wac_set_token(token)
        self._wac_offer_resume(self.env._("A new access token was saved."))
        return res

    def action_test_connection(self):
        """Test connection on a paused company that now works says Resume is the next step."""
        action = super().action_test_connection()
        if self.automation_paused and self.last_check_ok:
            self._wac_offer_resume(self.env._("Test connection succeeded."), notify=False)
            return self._wac_notify(self._wac_offer_text(self.env._(
                "Test connection succeeded.")), "warning")
        return action

    def _wac_offer_text(self, what):
        return self.env._(
            "%(what)s Automation of %(company)s is still paused (%(reason)s) and %(count)s "
            "message(s) are held: press Resume on the account to check it and send them.",
            what=what, company=self.company_id.name,
            reason=self.automation_pause_reason or "?", count=self.wac_held_count)

    def _wac_offer_resume(self, what, notify=True):
        """Say on the account (and to the user, live) that Resume is possible now."""
        if not self.automation_paused:
            return
        text = self._wac_offer_text(what)
        self.message_post(body=text, subtype_xmlid="mail.mt_note")
        if notify:
            self.env.user._bus_send("simple_notification", {
                "type": "warning", "sticky": True, "title": self.env._("WhatsApp"),
                "message": text})

    # ------------------------------------------------------------
    # RESUME
    # ------------------------------------------------------------

    def action_wac_resume(self):
        """Open the Resume wizard, which runs Test connection and the checklist first."""
        self.ensure_one()
        self._wac_check_manager()
        wizard = self.env["wac.resume"].create({"account_id": self.id})
        wizard._wac_run_checks()
        return {"type": "ir.actions.act_window", "res_model": "wac.resume",
                "res_id": wizard.id, "view_mode": "form", "target": "new",
                "name": self.env._("Resume automation")}

    def _wac_check_manager(self):
        if not self.env.user.has_group(MANAGER_GROUP):
            raise UserError(self.env._("Only WhatsApp managers can resume automation or drop "
                                       "held messages."))
        self.check_access("write")

    def _wac_resume_check(self):
        """Test connection, then the readiness checklist: what blocks Resume, what does not.

        :rtype: ResumeCheck
        """
        self.ensure_one()
        _ = self.env._
        blockers, warnings = [], []
        if self.phone_number_id and self.sudo().access_token_enc:
            # The test itself, without the offer of Resume: the wizard is that offer.
            super().action_test_connection()
        if not self.last_check_ok:
            blockers.append(_("Test connection fails: %(error)s",
                              error=self.last_error or _("no access token")))
        elif self.state == "offboarded":
            blockers.append(_("Meta offboarded the number (a phone change or a reinstall): it "
                              "reconnects it by itself within minutes, and the held messages "
                              "then go. Wait, or connect it again with Embedded Signup."))
        elif self.state != "connected":
            blockers.append(_("The account is %(state)s: connect it again with Embedded "
                              "Signup.", state=dict(self._fields["state"]._description_selection(
                                  self.env)).get(self.state)))
        # The pause is what Resume ends, and the kill switch only holds messages longer.
        items = [label for label in self.env["wac.readiness"]._wac_blocking_open(self)
                 if label != self.env["wac.readiness"]._wac_labels()["feature_flag"]]
        # A go-live forced by an administrator accepted the open items: they do not block.
        (warnings if self.golive_override_on else blockers).extend(items)
        if self.env["wac.send"]._wac_kill_switch():
            warnings.append(_("The global kill switch is on: held messages wait until it is "
                              "off."))
        return ResumeCheck(blockers, warnings)

    def _wac_resume(self, reason):
        """Resume this company's automation (after :meth:`_wac_resume_check`), audit who and
        why, close the pause activities and release the held messages."""
        self.ensure_one()
        self._wac_check_manager()
        check = self._wac_resume_check()
        if check.blockers:
            raise UserError(self.env._(
                "Automation cannot resume yet. Fix first:\n%(items)s",
                items="\n".join("• " + item for item in check.blockers)))
        paused_for = self.automation_pause_reason
        self.write({"automation_paused": False, "automation_pause_reason": False})
        self.env["wac.audit.log"]._wac_log(self, "resume", self.env._("Automation"),
                                           old=paused_for, new=reason)
        # The to-do was written in the language of whoever paused (often a job): match any.
        summaries = {self.with_context(lang=code).env._("WhatsApp automation paused")
                     for code, _name in self.env["res.lang"].get_installed()}
        self.activity_ids.filtered(lambda a: a.summary in summaries).action_feedback(
            self.env._("Resumed by %s", self.env.user.name))
        released = self.env["wac.message"]._wac_release_held(self.company_id)
        self.message_post(body=self.env._(
            "Automation resumed by %(user)s: %(reason)s (paused for: %(paused)s). %(count)s "
            "held message(s) released: each is checked again, then sent or dropped.",
            user=self.env.user.name, reason=reason, paused=paused_for or "?",
            count=released), subtype_xmlid="mail.mt_note")
        return released

    def _wac_apply_account_update(self, update):
        """Meta reconnected an offboarded number and the pause ended: release as Resume."""
        was_paused = self.automation_paused
        summary = super()._wac_apply_account_update(update)
        if was_paused and not self.automation_paused:
            self.env["wac.audit.log"]._wac_log(self, "resume", self.env._("Automation"),
                                               new=summary, note=update.event)
            self.env["wac.message"]._wac_release_held(self.company_id)
        return summary

    # ------------------------------------------------------------
    # HELD MESSAGES
    # ------------------------------------------------------------

    def action_wac_drop_held(self):
        """Drop every held message of this company (the button asks for confirmation)."""
        self.ensure_one()
        self._wac_check_manager()
        reason = self.env._("Dropped by %s with every held message.", self.env.user.name)
        count = self.env["wac.message"]._wac_drop_held(self, reason)
        self.env["wac.audit.log"]._wac_log(self, "change", self.env._("Held messages"),
                                           old=count, new=0, note=reason)
        self.message_post(body=self.env._("%(count)s held message(s) dropped by %(user)s.",
                                          count=count, user=self.env.user.name),
                          subtype_xmlid="mail.mt_note")
        return self._wac_notify(self.env._("%s held message(s) dropped.", count), "success")

    def action_wac_open_held(self):
        """The message log, filtered on this company's held messages."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "whatsapp_coexistence.wac_message_action")
        action.update(domain=[("account_id", "=", self.id), ("status", "=", "held")],
                      context={"create": False})
        return action

    def _wac_held_message_counts(self, now):
        """``{account id: messages held longer than the account's threshold}``."""
        self.env["wac.message"].flush_model(["account_id", "status", "wa_held_since"])
        self.env.cr.execute("""
            SELECT m.account_id, count(*)
              FROM wac_message m JOIN wac_account a ON a.id = m.account_id
             WHERE m.status = 'held' AND m.account_id = ANY(%s)
               AND m.wa_held_since < %s - make_interval(mins => a.alert_held_minutes)
             GROUP BY m.account_id""", [self.ids, now])
        return dict(self.env.cr.fetchall())

    def _compute_overview(self):
        res = super()._compute_overview()
        for account in self:
            account.ov_held = account.wac_held_count
        return res
