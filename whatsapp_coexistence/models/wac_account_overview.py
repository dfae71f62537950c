"""The figures of the WhatsApp Overview: one kanban card per account.

Every figure is a count over a domain (:meth:`_wac_figure_domain`), so the card and the list
a click opens always agree. The counts are grouped reads over all the displayed accounts at
once: the card costs a handful of queries whatever the number of companies.
"""

from datetime import timedelta

from odoo import fields, models
from odoo.osv import expression

# Meta accepted it: everything after "accepted" in the funnel sent → delivered → read.
SENT_STATUSES = ("accepted", "held_for_quality_assessment", "sent", "delivered", "read",
                 "played")
DELIVERED_STATUSES = ("delivered", "read", "played")
READ_STATUSES = ("read", "played")
PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
JOB_WAITING_STATES = ("pending", "enqueued")
COUNTED = ["ov_%s_%s" % (name, period) for period in PERIODS
           for name in ("sent", "delivered", "read", "failed")] + ["ov_uncertain"]


class WacAccount(models.Model):
    _inherit = "wac.account"

    ov_sent_24h = fields.Integer("Sent (24 h)", compute="_compute_overview")
    ov_delivered_24h = fields.Integer("Delivered (24 h)", compute="_compute_overview")
    ov_read_24h = fields.Integer("Read (24 h)", compute="_compute_overview")
    ov_failed_24h = fields.Integer("Failed (24 h)", compute="_compute_overview")
    ov_sent_7d = fields.Integer("Sent (7 days)", compute="_compute_overview")
    ov_delivered_7d = fields.Integer("Delivered (7 days)", compute="_compute_overview")
    ov_read_7d = fields.Integer("Read (7 days)", compute="_compute_overview")
    ov_failed_7d = fields.Integer("Failed (7 days)", compute="_compute_overview")
    ov_failure_rate_7d = fields.Float("Failure rate (7 days, %)", compute="_compute_overview",
                                      digits=(5, 1))
    ov_uncertain = fields.Integer("Uncertain", compute="_compute_overview",
                                  help="Sends whose outcome is unknown or that failed without "
                                  "an answer from Meta: a person checks and presses Retry.")
    # Messages held while a company is paused: issue #11 fills it; until then nothing is held.
    ov_held = fields.Integer("Held", compute="_compute_overview")
    ov_jobs_waiting = fields.Integer("Jobs waiting", compute="_compute_overview")
    ov_alerts = fields.Integer("Open alerts", compute="_compute_overview")
    ov_last_webhook = fields.Datetime("Last webhook", compute="_compute_overview")

    def _compute_overview(self):
        counts = self._wac_overview_message_counts()
        jobs = self._wac_overview_jobs()
        webhooks = self._wac_overview_last_webhooks()
        alerts = self._wac_overview_alerts()
        for account in self:
            company = account.company_id.id
            figures = dict.fromkeys(COUNTED, 0)
            figures.update(counts.get(company, {}))
            account.update(figures)
            done = account.ov_sent_7d + account.ov_failed_7d
            account.ov_failure_rate_7d = 100.0 * account.ov_failed_7d / done if done else 0.0
            account.ov_held = 0
            account.ov_jobs_waiting = jobs.get(company, 0)
            account.ov_last_webhook = webhooks.get(company, False)
            account.ov_alerts = alerts.get(account.id, 0)

    # ------------------------------------------------------------
    # THE COUNTS
    # ------------------------------------------------------------

    def _wac_overview_message_counts(self):
        """``{company_id: {field name: count}}`` from two grouped reads (24 h and 7 days)."""
        Message = self.env["wac.message"]
        result = {}
        now = fields.Datetime.now()
        for period, span in PERIODS.items():
            groups = Message._read_group(
                [("company_id", "in", self.company_id.ids), ("direction", "=", "out"),
                 ("message_at", ">=", now - span)],
                ["company_id", "status"], ["__count"])
            for company, status, count in groups:
                figures = result.setdefault(company.id, {})
                for name, statuses in (("sent", SENT_STATUSES),
                                       ("delivered", DELIVERED_STATUSES),
                                       ("read", READ_STATUSES), ("failed", ("failed",))):
                    if status in statuses:
                        key = "ov_%s_%s" % (name, period)
                        figures[key] = figures.get(key, 0) + count
        for company, count in Message._read_group(
                self._wac_figure_domain("uncertain", self.company_id), ["company_id"],
                ["__count"]):
            result.setdefault(company.id, {})["ov_uncertain"] = count
        return result

    def _wac_overview_jobs(self):
        """Jobs of these companies waiting in the whatsapp channels (read as superuser: the
        count only; the list is for the job managers)."""
        groups = self.env["queue.job"].sudo()._read_group(
            self._wac_figure_domain("jobs", self.company_id), ["company_id"], ["__count"])
        return {company.id: count for company, count in groups}

    def _wac_overview_last_webhooks(self):
        groups = self.env["wac.webhook.event"]._read_group(
            [("company_id", "in", self.company_id.ids)], ["company_id"], ["received_at:max"])
        return {company.id: last for company, last in groups}

    def _wac_overview_alerts(self):
        groups = self.env["mail.activity"]._read_group(
            [("res_model", "=", "wac.account"), ("res_id", "in", self.ids)], ["res_id"],
            ["__count"])
        return dict(groups)

    # ------------------------------------------------------------
    # DRILL-DOWN: the same domains, opened as lists
    # ------------------------------------------------------------

    def _wac_figure_domain(self, figure, companies):
        """The domain behind one figure of the card, for ``companies``.

        :param str figure: ``sent_24h``, ``failed_7d``, … ``uncertain``, ``jobs``
        """
        company = [("company_id", "in", companies.ids)]
        if figure == "jobs":
            return expression.AND([company, [("state", "in", JOB_WAITING_STATES),
                                             ("channel", "=like", "root.whatsapp%")]])
        if figure == "uncertain":
            return expression.AND([company, [
                ("direction", "=", "out"), ("wa_send_key", "!=", False), "|",
                ("wa_attempt_open", "=", True), "&", "&", ("status", "=", "failed"),
                ("wamid", "=", False), ("error_code", "in", (0, False))]])
        name, period = figure.rsplit("_", 1)
        statuses = {"sent": SENT_STATUSES, "delivered": DELIVERED_STATUSES,
                    "read": READ_STATUSES, "failed": ("failed",)}[name]
        since = fields.Datetime.now() - PERIODS[period]
        return expression.AND([company, [("direction", "=", "out"),
                                         ("status", "in", statuses),
                                         ("message_at", ">=", since)]])

    def action_wac_open_figure(self):
        """Open the list behind the figure named in the context key ``wac_figure``."""
        self.ensure_one()
        figure = self.env.context.get("wac_figure") or "sent_7d"
        labels = {name[3:]: field.string for name, field in self._fields.items()
                  if name.startswith("ov_")}
        title = "%s · %s" % (self.company_id.name, labels.get(figure, figure))
        if figure == "jobs":
            return {"type": "ir.actions.act_window", "name": title, "res_model": "queue.job",
                    "views": [(False, "list"), (False, "form")],
                    "domain": self._wac_figure_domain(figure, self.company_id)}
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "whatsapp_coexistence.wac_message_action")
        # The web client titles the breadcrumb with display_name when the action has one.
        action.update(name=title, display_name=title, context={"create": False},
                      domain=self._wac_figure_domain(figure, self.company_id))
        return action

    def action_wac_open_alerts(self):
        self.ensure_one()
        return {"type": "ir.actions.act_window", "res_model": "mail.activity",
                "name": self.env._("%(company)s · Open alerts", company=self.company_id.name),
                "views": [(False, "list"), (False, "form")],
                "domain": [("res_model", "=", "wac.account"), ("res_id", "=", self.id)]}

    def action_wac_open_webhooks(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "whatsapp_coexistence.wac_webhook_event_action")
        title = self.env._("%(company)s · Webhooks", company=self.company_id.name)
        action.update(domain=[("company_id", "=", self.company_id.id)], name=title,
                      display_name=title)
        return action

    def action_wac_open_readiness(self):
        self.ensure_one()
        return {"type": "ir.actions.act_window", "res_model": "wac.account", "res_id": self.id,
                "views": [(False, "form")]}
