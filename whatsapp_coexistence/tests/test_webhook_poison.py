import hashlib
import json

from odoo.tests import tagged
from odoo.tools import mute_logger

from . import payloads as P
from .common import WacHttpCase

QUIET = ("odoo.addons.whatsapp_coexistence.models.wac_webhook_delivery",
         "odoo.addons.whatsapp_coexistence.models.wac_webhook_event")
GOOD_WAMID = "wamid.GOOD.NEIGHBOUR"


def change_of(payload):
    return payload["entry"][0]["changes"][0]


def with_good_neighbour(*poisoned_changes):
    """A delivery whose first entry holds a valid message and whose second entry holds the
    poisoned changes, as Meta batches them."""
    payload = P.inbound_text(wamid=GOOD_WAMID, from_="5511991234567", body="Tudo certo?")
    payload["entry"].append({"id": P.WABA_ID, "time": 1749416400,
                             "changes": list(poisoned_changes)})
    return payload


@tagged("post_install", "-at_install")
class TestWebhookPoison(WacHttpCase):
    """One bad change, message or status never loses its neighbours, and every delivery and
    event ends in a state a person can see and act on."""

    def deliver(self, payload=None, body=None):
        with mute_logger(*QUIET), self.processing():
            response = self.post_webhook(payload, body=body)
            self.assertEqual(response.status_code, 200, response.text)
        # The minute cron closes a delivery whose events had jobs of their own.
        self.env["wac.webhook.delivery"]._wac_cron_dispatch()
        delivery = self.env["wac.webhook.delivery"].search([], limit=1)
        self.assertNotIn(delivery.state, ("received", "processing"))
        return delivery

    def assert_good_neighbour_stored(self):
        message = self.env["wac.message"].search([("wamid", "=", GOOD_WAMID)])
        self.assertEqual((message.body, message.company_id), ("Tudo certo?", self.company_a))

    def events(self, delivery):
        return delivery.event_ids.sorted("change_index")

    def test_nul_in_field_and_phone_number_id(self):
        nul_field = change_of(P.inbound_text(wamid="wamid.NUL.FIELD", from_="5511990000001"))
        nul_field["field"] = "messages\u0000"
        nul_phone = change_of(P.inbound_text(wamid="wamid.NUL.PHONE", from_="5511990000002",
                                             phone_number_id=P.PHONE_NUMBER_ID + "\u0000"))
        delivery = self.deliver(with_good_neighbour(nul_field, nul_phone))
        self.assert_good_neighbour_stored()
        # NUL is not stored (PostgreSQL text cannot hold it); the payload keeps it, escaped.
        events = self.events(delivery)
        self.assertEqual(events.mapped("field"), ["messages"] * 3)
        self.assertEqual(events[2].phone_number_id, P.PHONE_NUMBER_ID)
        self.assertIn("\\u0000", events[2].payload)
        self.assertEqual(events.mapped("state"), ["done"] * 3)
        self.assertEqual(delivery.state, "done")

    def test_garbled_object_loses_nothing_but_another_product_is_ignored(self):
        """Meta signed it: a missing or garbled ``object`` is decided by the changes."""
        payload = with_good_neighbour(change_of(P.template_status()))
        payload["object"] = "whatsapp_business_acc\u0000ount"
        delivery = self.deliver(payload)
        self.assert_good_neighbour_stored()
        self.assertEqual(delivery.state, "done")
        self.assertEqual(self.events(delivery).mapped("field"), [
            "messages", "message_template_status_update"])
        page = dict(P.inbound_text(wamid="wamid.PAGE"), object="page")
        delivery = self.deliver(page)
        self.assertEqual((delivery.state, delivery.error), (
            "ignored", "Webhook object is not whatsapp_business_account"))
        self.assertFalse(self.env["wac.message"].search([("wamid", "=", "wamid.PAGE")]))

    def test_messages_with_an_empty_id_are_each_kept(self):
        """An empty wamid is no key: the second such message was refused by the unique
        index (an ERROR line, then taken for one already there) and lost."""
        with self.assertNoLogs("odoo.sql_db", "ERROR"):
            for body in ("Sem id 1", "Sem id 2"):
                self.deliver(P.inbound_text(wamid="", from_="5511990000077", body=body))
        kept = self.env["wac.message"].search([("body", "in", ("Sem id 1", "Sem id 2"))])
        self.assertEqual(sorted(kept.mapped("body")), ["Sem id 1", "Sem id 2"])
        self.assertEqual(kept.mapped("wamid"), [False, False])

    def test_field_of_nine_thousand_characters(self):
        huge = change_of(P.inbound_text(wamid="wamid.HUGE.FIELD"))
        # Hex digits of hashes: PostgreSQL cannot compress them into an index entry.
        huge["field"] = "".join(hashlib.sha256(b"%d" % n).hexdigest() for n in range(141))[:9000]
        delivery = self.deliver(with_good_neighbour(huge))
        self.assert_good_neighbour_stored()
        event = self.events(delivery)[1]
        self.assertEqual((event.field, event.state), (huge["field"][:512], "ignored"))
        self.assertIn(huge["field"], delivery.body, "the raw body keeps the whole field")

    def test_one_bad_timestamp_fails_only_its_message(self):
        payload = P.inbound_text(wamid="wamid.T1", from_="5511990000003")
        value = change_of(payload)["value"]
        good = value["messages"][0]
        value["messages"] = [
            dict(good, id="wamid.T1"),
            dict(good, id="wamid.T2", timestamp="99999999999999999999"),
            dict(good, id="wamid.T3"),
        ]
        delivery = self.deliver(with_good_neighbour(change_of(payload)))
        self.assert_good_neighbour_stored()
        stored = self.env["wac.message"].search([("wamid", "in", ("wamid.T1", "wamid.T2",
                                                                  "wamid.T3"))])
        self.assertEqual(sorted(stored.mapped("wamid")), ["wamid.T1", "wamid.T3"])
        event = self.events(delivery)[1]
        self.assertEqual(event.state, "partial")
        self.assertIn("message #2", event.error)
        self.assertIn('"id": "wamid.T2"', event.error, "the fragment as Meta sent it")
        self.assertIn("99999999999999999999", event.error)
        self.assertEqual(delivery.state, "partial")

    def test_one_bad_timestamp_in_a_history_chunk(self):
        thread = {"id": "5511990000004", "messages": [
            {"from": "5511990000004", "id": "wamid.H%d" % n, "timestamp": timestamp,
             "type": "text", "text": {"body": "h%d" % n}}
            for n, timestamp in enumerate(("1739230955", "1e300", "1739230957"))]}
        delivery = self.deliver(with_good_neighbour(
            change_of(P.history_chunk(threads=[thread], progress=100))))
        self.assert_good_neighbour_stored()
        stored = self.env["wac.message"].search([("wamid", "like", "wamid.H")])
        self.assertEqual(sorted(stored.mapped("wamid")), ["wamid.H0", "wamid.H2"])
        event = self.events(delivery)[1]
        self.assertEqual((event.state, event.summary),
                         ("partial", "2 history message(s) imported"))
        self.assertIn("history message #2", event.error)
        self.assertIn("1e300", event.error)
        self.assertRecordValues(self.account_a, [{"history_state": "done",
                                                  "history_messages": 2}])

    def test_history_media_holding_the_same_message_twice(self):
        payload = P.history_media(wamid="wamid.MEDIA.TWICE")
        messages = change_of(payload)["value"]["messages"]
        messages.append(dict(messages[0], image=dict(messages[0]["image"], caption="again")))
        delivery = self.deliver(with_good_neighbour(change_of(payload)))
        self.assert_good_neighbour_stored()
        media = self.env["wac.message"].search([("wamid", "=", "wamid.MEDIA.TWICE")])
        self.assertEqual((len(media), media.body), (1, "again"))
        self.assertEqual(self.events(delivery).mapped("state"), ["done", "done"])

    def test_lone_surrogates_anywhere_are_replaced(self):
        failed = change_of(P.statuses(items=(("wamid.SURROGATE", "failed", "1750030073"),),
                                      errors=[P.status_error(title="@TITLE@")]))
        template = change_of(P.template_status(name="@NAME@"))
        body = self.dumps(with_good_neighbour(failed, template))
        body = body.replace(b"@TITLE@", rb"Erro \udfff")
        body = body.replace(b"@NAME@", rb"lembrete\udc00\ud800")
        delivery = self.deliver(body=body)
        self.assert_good_neighbour_stored()
        self.assertEqual(self.events(delivery).mapped("state")[:2], ["done", "done"])
        status = self.env["wac.message.status"].search([("wamid", "=", "wamid.SURROGATE")])
        self.assertEqual(status.error_title, "Erro \ufffd")
        self.assertIn("lembrete\ufffd\ufffd", self.events(delivery)[2].payload)

    def test_a_bad_status_among_good_ones(self):
        payload = P.statuses(items=(("wamid.S1", "sent", "1750030073"),
                                    ("wamid.S2", "sent", "1e300"),
                                    ("wamid.S3", "delivered", "1750030075")))
        delivery = self.deliver(with_good_neighbour(change_of(payload)))
        self.assert_good_neighbour_stored()
        rows = self.env["wac.message.status"].search([("wamid", "like", "wamid.S")])
        self.assertEqual(sorted(rows.mapped("wamid")), ["wamid.S1", "wamid.S3"])
        self.assertIn("status #2", self.events(delivery)[1].error)

    def test_wrong_types_where_meta_puts_objects(self):
        payload = P.statuses(items=(("wamid.W1", "failed", "1750030073"),),
                             errors=[{"code": "not a number", "title": ["a", "list"],
                                      "error_data": "not an object"}])
        change_of(payload)["value"]["statuses"][0]["pricing"] = {"category": {"a": 1}}
        change_of(payload)["value"]["errors"] = [{"code": 2**40, "error_data": 7}]
        delivery = self.deliver(with_good_neighbour(change_of(payload)))
        self.assert_good_neighbour_stored()
        self.assertEqual(self.events(delivery).mapped("state"), ["done", "done"])
        status = self.env["wac.message.status"].search([("wamid", "=", "wamid.W1")])
        self.assertEqual((status.error_code, status.error_title, status.pricing_category),
                         (0, False, False))

    def test_state_sync_item_without_a_phone_number(self):
        payload = P.state_sync_add()
        items = change_of(payload)["value"]["state_sync"]
        items.append(json.loads(json.dumps(items[0])))
        items[1]["contact"]["phone_number"] = "not a number"
        delivery = self.deliver(with_good_neighbour(change_of(payload)))
        self.assert_good_neighbour_stored()
        event = self.events(delivery)[1]
        self.assertEqual(event.state, "partial")
        self.assertIn("contact #2", event.error)
        self.assertIn("not a number", event.error)
        self.assertTrue(self.env["wac.contact"].search([("in_app_address_book", "=", True)]))
