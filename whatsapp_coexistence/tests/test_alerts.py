"""Alerts: each cause raised and cleared, one alert per cause, who closed it."""

from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from ..const import CHANNEL_WHATSAPP
from .common import WacTransactionCase


@tagged("post_install", "-at_install")
class TestAlerts(WacTransactionCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        contacts = cls.env["wac.contact"]._wac_resolve(
            cls.account_a, [("5511991234567", None, "Maria")])
        cls.contact = contacts["5511991234567"]

    def alerts(self, cause, account=None):
        return self.env["wac.alert"].search([("account_id", "=", (account or self.account_a).id),
                                             ("cause", "=", cause), ("state", "!=", "closed")])

    def evaluate(self):
        self.env["wac.account"]._wac_cron_evaluate_alerts()

    def messages(self, count, status, age=timedelta(minutes=5), wamid=True):
        Message = self.env["wac.message"]
        created = Message
        first = Message.search_count([])
        for index in range(first, first + count):
            created |= Message.create({
                "company_id": self.company_a.id, "account_id": self.account_a.id,
                "contact_id": self.contact.id, "direction": "out", "source": "api",
                "status": status, "message_at": fields.Datetime.now(),
                "wamid": "wamid.test.%d" % index if wamid else False})
        self.env.flush_all()
        self.env.cr.execute("UPDATE wac_message SET create_date = %s WHERE id IN %s",
                            (fields.Datetime.now() - age, tuple(created.ids)))
        return created

    # ------------------------------------------------------------
    # dedup, update, acknowledgement
    # ------------------------------------------------------------

    def test_one_alert_per_cause_updated_acknowledged_then_closed(self):
        self.account_a.quality_rating = "YELLOW"
        self.evaluate()
        self.evaluate()
        alert = self.alerts("quality")
        self.assertEqual(len(alert), 1, "no second alert while the first is open")
        activity = alert.activity_ids.filtered(lambda a: a.user_id == self.manager_a)
        self.assertEqual(len(activity), 1)
        self.assertIn("Alert", self.account_a.message_ids[0].body)
        self.account_a.quality_rating = "RED"
        self.evaluate()
        self.assertEqual(self.alerts("quality"), alert, "updated, not repeated")
        self.assertIn("RED", alert.details)
        self.assertIn("RED", str(activity.note))
        activity.with_user(self.manager_a).action_feedback(feedback="Calling Meta")
        self.assertEqual((alert.state, alert.closed_by), ("acknowledged", self.manager_a))
        self.assertIn(self.manager_a.name, alert.close_note)
        self.evaluate()
        self.assertEqual(self.alerts("quality"), alert)
        self.assertFalse(alert.activity_ids, "an acknowledged alert is not notified again")
        self.account_a.quality_rating = "GREEN"
        self.evaluate()
        self.assertEqual(alert.state, "closed")
        self.assertFalse(self.alerts("quality"))
        self.account_a.quality_rating = "RED"
        self.evaluate()
        self.assertNotEqual(self.alerts("quality"), alert, "a new occurrence is a new alert")

    # ------------------------------------------------------------
    # each cause
    # ------------------------------------------------------------

    def test_disconnected_and_offboarded(self):
        self.account_a._wac_pause("test", state="offboarded", state_reason="ACCOUNT_OFFBOARDED")
        self.evaluate()
        self.assertIn("Offboarded (temporary) (ACCOUNT_OFFBOARDED)",
                      self.alerts("disconnected").details)
        self.account_a.state = "connected"
        self.evaluate()
        self.assertFalse(self.alerts("disconnected"))
        self.assertFalse(self.alerts("disconnected", self.account_b))

    def test_mapped_template_paused(self):
        template = self.env["wac.template"].create({
            "company_id": self.company_a.id, "account_id": self.account_a.id,
            "name": "appointment_reminder", "language": "pt_BR", "status": "APPROVED",
            "category": "UTILITY",
            "components": '[{"type": "BODY", "text": "Lembrete do seu horário."}]'})
        self.env["wac.template.mapping"].create({
            "company_id": self.company_a.id, "message_type": "reminder",
            "template_id": template.id})
        self.evaluate()
        self.assertFalse(self.alerts("template"))
        template.status = "PAUSED"
        self.evaluate()
        self.assertIn("appointment_reminder (PAUSED)", self.alerts("template").details)
        template.status = "APPROVED"
        self.evaluate()
        self.assertFalse(self.alerts("template"))

    def test_failure_rate_over_threshold(self):
        self.messages(20, "delivered")
        self.messages(4, "failed")
        self.evaluate()
        self.assertFalse(self.alerts("failure_rate"), "4 failures: under the minimum of 5")
        self.messages(2, "failed", age=timedelta(hours=2))
        self.evaluate()
        self.assertFalse(self.alerts("failure_rate"), "older than an hour")
        failed = self.messages(1, "failed")
        self.evaluate()
        self.assertIn("5 of 25", self.alerts("failure_rate").details)
        self.account_a.alert_failure_rate = 25.0
        self.evaluate()
        self.assertFalse(self.alerts("failure_rate"), "the company's own threshold")
        self.account_a.alert_failure_rate = 10.0
        self.evaluate()
        failed.unlink()
        self.evaluate()
        self.assertFalse(self.alerts("failure_rate"))

    def test_no_webhook_while_sending(self):
        self.messages(3, "sent", age=timedelta(hours=2))
        self.evaluate()
        self.assertIn("6 hours", self.alerts("webhook_silence").details)
        self.assertFalse(self.alerts("webhook_silence", self.account_b))
        delivery = self.env["wac.webhook.delivery"].create({
            "body_sha256": "%064x" % 1, "body": "{}", "state": "done"})
        self.env["wac.webhook.event"].create({
            "delivery_id": delivery.id, "company_id": self.company_a.id,
            "account_id": self.account_a.id, "field": "messages", "state": "done",
            "payload": "{}"})
        self.evaluate()
        self.assertFalse(self.alerts("webhook_silence"))

    def test_recent_sends_and_silent_companies_that_do_not_send_are_quiet(self):
        self.messages(3, "sent", age=timedelta(minutes=5))
        self.messages(3, "sent", age=timedelta(hours=8))
        self.evaluate()
        self.assertFalse(self.alerts("webhook_silence"))

    def test_jobs_waiting_too_long(self):
        self.account_a.with_company(self.company_a).with_delay(
            channel=CHANNEL_WHATSAPP)._wac_evaluate_alerts()
        self.evaluate()
        self.assertFalse(self.alerts("job_backlog"), "a fresh job is fine")
        self.env.cr.execute(
            "UPDATE queue_job SET date_created = %s WHERE company_id = %s",
            (fields.Datetime.now() - timedelta(minutes=20), self.company_a.id))
        self.evaluate()
        self.assertIn("1 WhatsApp jobs", self.alerts("job_backlog").details)
        self.env["queue.job"].search([("company_id", "=", self.company_a.id)]).write(
            {"state": "done"})
        self.env.flush_all()
        self.evaluate()
        self.assertFalse(self.alerts("job_backlog"))

    def test_held_messages_hook_finds_none_until_held_messages_exist(self):
        now = fields.Datetime.now()
        self.assertEqual(self.account_a._wac_held_message_counts(now), {})
        self.evaluate()
        self.assertFalse(self.alerts("held"))

    def test_alerts_are_company_scoped(self):
        self.account_b.quality_rating = "RED"
        self.evaluate()
        alert = self.alerts("quality", self.account_b)
        self.assertTrue(alert)
        Alert = self.env["wac.alert"].with_user(self.manager_a)
        self.assertFalse(Alert.search([("id", "=", alert.id)]))
        self.assertEqual(alert.activity_ids.user_id, self.manager_b)
