from datetime import datetime

from lxml import etree

from odoo.tests import tagged
from odoo.tools.safe_eval import safe_eval

from .common import WacHttpCase


@tagged("post_install", "-at_install")
class TestMonitoringViews(WacHttpCase):
    """The search views of the raw deliveries and of the refused webhooks (administrators)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Delivery = cls.env["wac.webhook.delivery"].sudo()
        cls.deliveries = {
            state: Delivery.create({
                "body_sha256": "%064x" % number, "body": "{}", "state": state,
                "remote_addr": "173.252.%d.1" % number, "received_at": datetime(2026, 12, number),
            })
            for number, state in enumerate(("received", "done", "partial", "failed", "ignored"), 1)
        }
        # The processed one was redelivered twice by Meta.
        cls.env["wac.webhook.redelivery"].sudo().create([
            {"body_sha256": cls.deliveries["done"].body_sha256} for _copy in range(2)])
        Rejection = cls.env["wac.webhook.rejection"].sudo()
        cls.rejections = {
            reason: Rejection.create({
                "hour": datetime(2026, 12, 1, number), "remote_addr": "203.0.113.%d" % number,
                "reason": reason, "last_seen": datetime(2026, 12, 1, number, 30),
            })
            for number, reason in enumerate(
                ("no_secret", "missing_signature", "bad_signature", "bad_json", "too_large"), 1)
        }

    def search_filter(self, model, name):
        """The records of this test that the default search view's filter ``name`` shows."""
        Model = self.env[model].with_user(self.env.ref("base.user_admin"))
        made = {"wac.webhook.delivery": self.deliveries, "wac.webhook.rejection": self.rejections}
        mine = [("id", "in", [record.id for record in made[model].values()])]
        arch = etree.fromstring(Model.get_views([(False, "search")])["views"]["search"]["arch"])
        [node] = arch.xpath("//filter[@name='%s']" % name)
        if node.get("date"):
            # A date filter: the field must exist and be a date(time) the model can sort on.
            self.assertIn(Model._fields[node.get("date")].type, ("date", "datetime"))
            return Model.search([*mine, (node.get("date"), "!=", False)])
        if node.get("context"):
            group_by = safe_eval(node.get("context"))["group_by"].split(":")[0]
            return Model.read_group(mine, [group_by], [group_by])
        return Model.search(mine + safe_eval(node.get("domain")))

    def test_delivery_filters(self):
        D = self.deliveries
        model = "wac.webhook.delivery"
        self.assertEqual(self.search_filter(model, "needs_attention"), D["partial"] | D["failed"])
        self.assertEqual(self.search_filter(model, "received"), D["received"])
        self.assertEqual(self.search_filter(model, "done"), D["done"])
        self.assertEqual(self.search_filter(model, "ignored"), D["ignored"])
        self.assertEqual(self.search_filter(model, "redelivered"), D["done"])
        self.assertEqual(len(self.search_filter(model, "filter_received_at")), 5)
        by_source = self.search_filter(model, "group_remote_addr")
        self.assertEqual(len(by_source), 5, "one group per source address")
        self.assertEqual(len(self.search_filter(model, "group_state")), 5)

    def test_rejection_filters(self):
        R = self.rejections
        model = "wac.webhook.rejection"
        self.assertEqual(self.search_filter(model, "reason_signature"),
                         R["missing_signature"] | R["bad_signature"])
        self.assertEqual(self.search_filter(model, "reason_no_secret"), R["no_secret"])
        self.assertEqual(self.search_filter(model, "reason_bad_json"), R["bad_json"])
        self.assertEqual(self.search_filter(model, "reason_too_large"), R["too_large"])
        self.assertEqual(len(self.search_filter(model, "filter_hour")), 5)
        self.assertEqual(len(self.search_filter(model, "filter_last_seen")), 5)
        self.assertEqual(len(self.search_filter(model, "group_reason")), 5)
        self.assertEqual(len(self.search_filter(model, "group_remote_addr")), 5)

    def test_admin_filters_in_the_browser(self):
        self.start_tour("/odoo/action-whatsapp_coexistence.wac_webhook_delivery_action",
                        "whatsapp_coexistence_monitoring_filters", login="admin")
