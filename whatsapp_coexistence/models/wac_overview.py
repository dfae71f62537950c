"""The figures of the WhatsApp Overview (``wac.overview``): one kanban card per account.

Every figure is a count over a domain (:meth:`_wac_figure_domain`), so the card and the list
a click opens always agree. The counts are grouped reads over all the displayed accounts at
once: the card costs a handful of queries whatever the number of companies.
"""

from datetime import timedelta

from odoo import api, fields, models
from odoo.osv import expression

from ..const import CHANNEL_WHATSAPP

# Meta accepted it: everything after "accepted" in the funnel sent → delivered → read.
SENT_STATUSES = ("accepted", "held_for_quality_assessment", "sent", "delivered", "read",
                 "played")
DELIVERED_STATUSES = ("delivered", "read", "played")
READ_STATUSES = ("read", "played")
PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
JOB_WAITING_STATES = ("pending", "enqueued")
COUNTED = ["ov_%s_%s" % (name, period) for period in PERIODS
           for name in ("sent", "delivered", "read", "failed")] + ["ov_uncertain"]


class WacOverview(models.AbstractModel):
    """Counts the figures of the overview's cards, for many accounts at once."""

    _name = "wac.overview"
    _description = "WhatsApp overview figures"

    @api.model
    def _wac_message_counts(self, accounts):
        """``{company_id: {field name: count}}`` from two grouped reads (24 h and 7 days)."""
        Message = self.env["wac.message"]
        result = {}
        now = fields.Datetime.now()
        for period, span in PERIODS.items():
            groups = Message._read_group(
                [("company_id", "in", accounts.company_id.ids), ("direction", "=", "out"),
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
                self._wac_figure_domain("uncertain", accounts.company_id), ["company_id"],
                ["__count"]):
            result.setdefault(company.id, {})["ov_uncertain"] = count
        return result

    @api.model
    def _wac_jobs(self, accounts):
        """Jobs of these companies waiting in the whatsapp channels (read as superuser: the
        count only; the list is for the job managers)."""
        groups = self.env["queue.job"].sudo()._read_group(
            self._wac_figure_domain("jobs", accounts.company_id), ["company_id"], ["__count"])
        return {company.id: count for company, count in groups}

    @api.model
    def _wac_last_webhooks(self, accounts):
        groups = self.env["wac.webhook.event"]._read_group(
            [("company_id", "in", accounts.company_id.ids)], ["company_id"], ["received_at:max"])
        return {company.id: last for company, last in groups}

    @api.model
    def _wac_alerts(self, accounts):
        groups = self.env["mail.activity"]._read_group(
            [("res_model", "=", "wac.account"), ("res_id", "in", accounts.ids)], ["res_id"],
            ["__count"])
        return dict(groups)

    @api.model
    def _wac_figure_domain(self, figure, companies):
        """The domain behind one figure of the card, for ``companies``.

        :param str figure: ``sent_24h``, ``failed_7d``, … ``uncertain``, ``jobs``
        """
        company = [("company_id", "in", companies.ids)]
        if figure == "jobs":
            return expression.AND([company, [("state", "in", JOB_WAITING_STATES),
                                             ("channel", "=like", CHANNEL_WHATSAPP + "%")]])
        if figure == "uncertain":
            return expression.AND([company, [
                ("direction", "=", "out"), "|", ("wa_attempt_open", "=", True),
                ("wa_uncertain", "=", True)]])
        name, period = figure.rsplit("_", 1)
        statuses = {"sent": SENT_STATUSES, "delivered": DELIVERED_STATUSES,
                    "read": READ_STATUSES, "failed": ("failed",)}[name]
        since = fields.Datetime.now() - PERIODS[period]
        return expression.AND([company, [("direction", "=", "out"),
                                         ("status", "in", statuses),
                                         ("message_at", ">=", since)]])
