from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.queue_job.tests.common import trap_jobs

from ..models.wac_webhook_event_batch import BATCH_EVENTS
from . import payloads as P
from .common import WacHttpCase

QUIET = ("odoo.addons.whatsapp_coexistence.models.wac_webhook_delivery",
         "odoo.addons.whatsapp_coexistence.models.wac_webhook_event")


def one_delivery(*payloads):
    """The entries of ``payloads`` in one delivery, as Meta batches them."""
    delivery = payloads[0]
    for payload in payloads[1:]:
        delivery["entry"] += payload["entry"]
    return delivery


@tagged("post_install", "-at_install")
class TestWebhookBatch(WacHttpCase):
    """A delivery's events are processed many to a savepoint; one that fails its batch is
    processed again alone, and the guarantees of one savepoint per event hold: a bad unit is
    failed with its reason and fragment, its neighbours (in its change and in the batch) are
    stored, once."""

    def deliver(self, payload):
        with mute_logger(*QUIET), self.processing():
            self.assertEqual(self.post_webhook(payload).status_code, 200)
        return self.env["wac.webhook.delivery"].search([], limit=1)

    def test_a_poisoned_unit_in_the_middle_of_a_batch(self):
        texts = [P.inbound_text(wamid="wamid.B%d" % n, from_="55119900001%02d" % n,
                                body="oi %d" % n) for n in range(7)]
        poisoned = P.inbound_text(wamid="wamid.P1", from_="5511990000200", body="antes")
        messages = poisoned["entry"][0]["changes"][0]["value"]["messages"]
        messages += [dict(messages[0], id="wamid.P2", timestamp="99999999999999999999"),
                     dict(messages[0], id="wamid.P3", text={"body": "depois"})]
        statuses = P.statuses(items=(("wamid.B0", "delivered", "1750030080"),))
        delivery = self.deliver(one_delivery(*texts[:3], poisoned, *texts[3:], statuses))
        events = delivery.event_ids.sorted("change_index")
        self.assertEqual(events.mapped("state"), ["done"] * 3 + ["partial"] + ["done"] * 5)
        self.assertIn("message #2", events[3].error)
        self.assertIn('"id": "wamid.P2"', events[3].error, "the fragment as Meta sent it")
        self.assertEqual(events.mapped("attempts"), [1] * 9, "each event is recorded once")
        stored = self.env["wac.message"].search([("wamid", "like", "wamid.")])
        expected = ["wamid.B%d" % n for n in range(7)] + ["wamid.P1", "wamid.P3"]
        self.assertEqual(sorted(stored.mapped("wamid")), sorted(expected), "once each")
        self.assertEqual(self.env["wac.message.status"].search_count(
            [("wamid", "=", "wamid.B0")]), 1, "the status after the poisoned event")
        self.assertEqual(delivery.state, "partial")

    def test_a_batch_shares_one_savepoint(self):
        count = BATCH_EVENTS // 2
        payload = one_delivery(*[
            P.statuses(items=(("wamid.Q%d" % n, "delivered", "1750030080"),))
            for n in range(count)])
        with trap_jobs():
            self.assertEqual(self.post_webhook(payload).status_code, 200)
        delivery = self.env["wac.webhook.delivery"].search([], limit=1)
        with mute_logger(*QUIET), trap_jobs():
            before = self.env.cr.sql_log_count
            delivery._wac_process()
            queries = self.env.cr.sql_log_count - before
        self.assertEqual(set(delivery.event_ids.mapped("state")), {"done"})
        self.assertEqual(self.env["wac.message.status"].search_count(
            [("wamid", "like", "wamid.Q")]), count)
        # One savepoint per event, and per unit, flushed each event's row alone: about 8
        # statements an event; a batch leaves the handler's own.
        self.assertLess(queries / count, 4, "%d statements for %d events" % (queries, count))
