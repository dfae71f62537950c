"""The appointment automation settings of a company's account: timing, pacing, the answers
that confirm or cancel, and the text of the manual (wa.me) message.

Apart from ``wac_account.py``, which holds the connection, its lifecycle and readiness; the
settings are read by the planner, the sender and the reply handling.
"""

from odoo import api, fields, models
from odoo.exceptions import ValidationError


class WacAccount(models.Model):
    _inherit = "wac.account"  # pylint: disable=consider-merging-classes-inherited

    # Automation settings (appointments) -------------------------------------------------------
    reminder_offset_hours = fields.Float(
        "Reminder before (hours)", default=24.0,
        help="How long before an appointment its reminder goes.")
    rate_limit_mps = fields.Float(
        "Messages per second", default=20.0,
        help="Cap on this number's automated messages. Coexistence numbers have a fixed "
        "throughput of 20 messages per second at Meta (error 130429 beyond it).")
    recipient_spacing_s = fields.Float(
        "Seconds between two messages to one person", default=6.0,
        help="Meta refuses bursts to the same person (pair rate limit, error 131056).")
    recipient_daily_cap = fields.Integer(
        "Messages per person per day", default=10,
        help="Safety net on the messages the business starts: automated ones, and templates "
        "a person sends after the customer's 24 h window closed. Beyond it they fail for a "
        "person to look at. A person's answers inside the window are neither stopped nor "
        "counted. 0 = no cap.")
    quiet_hours_start = fields.Float(
        "Quiet hours from", default=21.0,
        help="Reminders are not sent between these hours (company's local time); they wait "
        "for the end. Equal hours mean no quiet hours.")
    quiet_hours_end = fields.Float("Quiet hours until", default=8.0)
    reply_confirm_words = fields.Char(
        "Answers that confirm", required=True,
        default="1, SIM, S, CONFIRMAR, CONFIRMO, CONFIRMAR PRESENÇA, CONFIRMAR NOVO HORÁRIO, "
        "CONFIRM, YES",
        help="A reply made of one of these words (comma-separated; case, accents and "
        "punctuation ignored) confirms the appointment.")
    reply_cancel_words = fields.Char(
        "Answers that cancel", required=True,
        default="2, NÃO, NAO, N, CANCELAR, CANCELAR HORÁRIO, DESMARCAR, CANCEL, "
        "CANCEL APPOINTMENT, NO",
        help="A reply made of one of these words declines the appointment.")
    manual_message_text = fields.Text(
        "Manual message",
        help="Text of the WhatsApp (manual) button of appointments; empty means the default "
        "text in the company's language (Portuguese or English). Placeholders: {name}, "
        "{first_name}, {date}, {time}, {weekday}, {location}, {organizer}, {company}, {title}. "
        "*bold* and _italics_ work in WhatsApp.")

    # ------------------------------------------------------------
    # CONSTRAINTS AND DEFAULTS
    # ------------------------------------------------------------

    @api.constrains("quiet_hours_start", "quiet_hours_end", "rate_limit_mps",
                    "recipient_spacing_s", "reminder_offset_hours", "recipient_daily_cap")
    def _check_automation_settings(self):
        for account in self:
            if not (0 <= account.quiet_hours_start <= 24 and 0 <= account.quiet_hours_end <= 24):
                raise ValidationError(self.env._("Quiet hours are between 0 and 24."))
            if account.rate_limit_mps < 0 or account.recipient_spacing_s < 0 \
                    or account.reminder_offset_hours < 0 or account.recipient_daily_cap < 0:
                raise ValidationError(self.env._(
                    "Rates, spacings, offsets and caps cannot be negative."))

    @api.constrains("automation_mode", "pilot_allowlist")
    def _check_hello_world_mappings(self):
        Mapping = self.env["wac.template.mapping"].sudo()
        for account in self.filtered(
                lambda a: a.automation_mode == "enabled" and not a.pilot_allowlist):
            if Mapping.search_count([("template_id.account_id", "=", account.id),
                                     ("template_id.name", "=", "hello_world")]):
                raise ValidationError(self.env._(
                    "hello_world is Meta's sample template: a company that maps it can only "
                    "enable automation with a pilot allowlist. Map an appointment template "
                    "instead, or fill the allowlist."))

    @api.model
    def _wac_default_manual_text(self, lang=None):
        """The default text of the manual wa.me message, in Portuguese or English."""
        if (lang or "").startswith("pt"):
            return ("Olá, *{first_name}*! 👋\n\n"
                    "Seu horário com a equipe *{company}*:\n"
                    "📅 {date}\n"
                    "🕒 {time}\n"
                    "📍 {location}\n\n"
                    "Responda com o número da opção:\n"
                    "1 - Confirmar\n"
                    "2 - Cancelar")
        return ("Hello *{first_name}*! 👋\n\n"
                "Your appointment with *{company}*:\n"
                "📅 {date}\n"
                "🕒 {time}\n"
                "📍 {location}\n\n"
                "Reply with the number of your choice:\n"
                "1 - Confirm\n"
                "2 - Cancel")

    def action_load_default_manual_text(self):
        """Fill the manual message with the default text, in the company's language, to edit."""
        for account in self:
            account.manual_message_text = account._wac_default_manual_text(
                account.company_id.partner_id.lang)
