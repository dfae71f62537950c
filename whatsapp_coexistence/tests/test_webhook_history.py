import json
from datetime import datetime, timezone

from odoo.tests import tagged

from ..models.wac_webhook_delivery import BODY_SLICE_BYTES
from ..tools.wa_cloud.webhook_stream import HISTORY_REF, SOURCE_BODY
from . import payloads as P
from .common import WacHttpCase


def threads(count, per_thread, first=5511900000000, text="Olá, às 14h? 😊 nº %d"):
    """``count`` threads of ``per_thread`` messages; every third one sent by the business."""
    return [{"id": str(first + t), "messages": [
        {"from": P.DISPLAY_PHONE_NUMBER if m % 3 == 0 else str(first + t),
         "id": "wamid.hist.%d.%d" % (first + t, m), "timestamp": str(1739230000 + 60 * m + t),
         "type": "text", "text": {"body": text % m},
         "history_context": {"status": "READ"}} for m in range(per_thread)]}
        for t in range(count)]


@tagged("post_install", "-at_install")
class TestWebhookHistory(WacHttpCase):
    """History chunks stay in the delivery body and are imported from there, one message at a
    time; events stored before that still import."""

    def deliver(self, *payloads):
        self.deliver_signed(*payloads)

    def history_rows(self, company=None):
        return self.env["wac.message"].search([
            ("source", "=", "history"), ("company_id", "=", (company or self.company_a).id)])

    def assert_imported(self, thread_list, company=None):
        rows = {m.wamid: m for m in self.history_rows(company)}
        sent = [m for t in thread_list for m in t["messages"]]
        self.assertEqual(len(rows), len(sent))
        for msg in sent:
            row = rows[msg["id"]]
            self.assertEqual(row.message_at, datetime.fromtimestamp(
                int(msg["timestamp"]), tz=timezone.utc).replace(tzinfo=None))
            self.assertEqual(row.body, msg["text"]["body"])
            self.assertEqual(row.direction, "out" if msg["from"] == P.DISPLAY_PHONE_NUMBER
                             else "in")

    def test_history_messages_stay_in_the_body_and_are_all_imported(self):
        chunk = threads(260, 10)  # 2,600 messages: three batches, a thread across two
        payload = P.history_chunk(threads=chunk, progress=100)
        self.deliver(payload)
        event = self.env["wac.webhook.event"].search([])
        self.assertEqual((event.state, event.company_id), ("done", self.company_a))
        self.assertEqual(json.loads(event.payload), {
            "messaging_product": "whatsapp", "metadata": P.metadata(),
            HISTORY_REF: {"source": SOURCE_BODY, "items": 1}})
        self.assertNotIn("wamid.hist", event.payload)
        self.assertGreater(event.delivery_id.size, 3 * BODY_SLICE_BYTES)
        self.assertEqual(event.summary, "2600 history message(s) imported")
        self.assert_imported(chunk)
        contacts = self.env["wac.contact"].search([("company_id", "=", self.company_a.id)])
        self.assertEqual(len(contacts), 260)
        row = self.history_rows().filtered(lambda m: m.wamid == "wamid.hist.5511900000259.9")
        self.assertEqual(row.contact_id.wa_id, "5511900000259")
        self.assertEqual(row.status, "read")
        self.assertRecordValues(self.account_a, [{
            "history_state": "done", "history_progress": 100, "history_messages": 2600,
            "history_chunks": 1}])

    def test_history_change_after_others_in_one_delivery(self):
        first, second = threads(2, 3), threads(3, 2, first=5511800000000)
        body = P.inbound_text(from_="5511991234567")
        body["entry"][0]["changes"].append(
            P.history_chunk(threads=first, chunk_order=1)["entry"][0]["changes"][0])
        body["entry"].append(P.template_status()["entry"][0])
        body["entry"].append(
            P.history_chunk(threads=second, chunk_order=2, progress=70)["entry"][0])
        self.deliver(body)
        events = self.env["wac.webhook.event"].search([], order="change_index")
        self.assertEqual(events.mapped("field"), [
            "messages", "history", "message_template_status_update", "history"])
        self.assertEqual(events[:2].mapped("state"), ["done", "done"])
        self.assertEqual(events[3].state, "done")
        self.assert_imported(first + second)
        self.assertEqual(self.account_a.history_chunk_ids.mapped("message_count"), [6, 6])
        self.assertEqual(self.env["wac.message"].search_count([("wamid", "=", P.TEXT_WAMID)]), 1)

    def test_many_chunks_of_one_delivery_with_a_bad_one_between(self):
        """One reading of the body serves all the delivery's chunks; the bad chunk fails its
        batch, which is replayed from an earlier chunk, and is then imported alone."""
        chunks = [threads(2, 3, first=5511700000000 + 100 * n) for n in range(12)]
        bad = chunks[5][1]["messages"][1]
        bad["timestamp"] = "1e300"
        body = P.history_chunk(threads=chunks[0], chunk_order=1)
        entry = body["entry"][0]
        for order, chunk in enumerate(chunks[1:], start=2):
            change = P.history_chunk(threads=chunk, chunk_order=order)["entry"][0]["changes"][0]
            if order == 7:  # a second entry from the seventh chunk on
                entry = dict(entry, changes=[])
                body["entry"].append(entry)
            entry["changes"].append(change)
        self.deliver(body)
        events = self.env["wac.webhook.event"].search([], order="change_index")
        self.assertEqual(len(events), 12)
        self.assertEqual(events.mapped("state"), ["done"] * 5 + ["partial"] + ["done"] * 6)
        self.assertIn("1e300", events[5].error)
        good = [dict(t, messages=[m for m in t["messages"] if m is not bad])
                for chunk in chunks for t in chunk]
        self.assert_imported(good)
        self.assertEqual(sorted(self.account_a.history_chunk_ids.mapped("chunk_order")),
                         list(range(1, 13)))

    def test_keys_out_of_order_and_empty_threads(self):
        chunk = threads(3, 2)
        chunk[0] = {"messages": chunk[0]["messages"], "id": chunk[0]["id"]}
        chunk.append({"id": "5511977776666", "messages": []})
        item = {"threads": chunk, "metadata": {"progress": 30, "chunk_order": 4, "phase": 1}}
        payload = P.envelope("history", {"history": [item], "metadata": P.metadata(),
                                         "messaging_product": "whatsapp"})
        self.deliver(payload)
        self.assert_imported(chunk)
        contact = self.history_rows().filtered(
            lambda m: m.wamid == "wamid.hist.5511900000000.1").contact_id
        self.assertEqual(contact.wa_id, "5511900000000")
        self.assertTrue(self.env["wac.contact"].search([("wa_id", "=", "5511977776666")]),
                        "an empty thread still has its contact")
        self.assertRecordValues(self.account_a.history_chunk_ids, [{
            "phase": 1, "chunk_order": 4, "progress": 30, "message_count": 6}])

    def test_declined_item_after_another(self):
        body = P.history_chunk(threads=threads(1, 2))
        declined = P.history_declined()["entry"][0]["changes"][0]["value"]["history"]
        body["entry"][0]["changes"][0]["value"]["history"] += declined
        self.deliver(body)
        self.assertEqual(len(self.history_rows()), 2)
        self.assertEqual(self.account_a.history_state, "declined")

    def test_event_stored_with_its_history_still_imports(self):
        """An event stored before the body was streamed holds the whole change value."""
        chunk = threads(4, 3)
        value = P.history_chunk(threads=chunk, chunk_order=3)["entry"][0]["changes"][0]["value"]
        Delivery, Event = self.env["wac.webhook.delivery"], self.env["wac.webhook.event"]
        # The body says nothing of it: the messages must come from the event's payload.
        delivery = Delivery.create({
            "body": json.dumps({"object": "whatsapp_business_account", "entry": []}),
            "body_sha256": "0" * 64, "state": "received"})
        event = Event.create({
            "delivery_id": delivery.id, "change_index": 0, "field": "history",
            "waba_id": P.WABA_ID, "phone_number_id": P.PHONE_NUMBER_ID,
            "payload": json.dumps(value, ensure_ascii=False)})
        event._wac_route()
        event._wac_job_process()
        self.assertEqual((event.state, event.summary), ("done", "12 history message(s) imported"))
        self.assert_imported(chunk)
        self.assertEqual(self.account_a.history_chunk_ids.chunk_order, 3)

    def test_failed_and_unroutable_history_events_are_reprocessed(self):
        chunk = threads(3, 4, first=5521900000000)
        payload = P.history_chunk(phone_number_id="777000111222333", waba_id="777000111222000",
                                  threads=chunk)
        self.deliver(payload)
        event = self.env["wac.webhook.event"].search([])
        self.assertEqual(event.state, "unroutable")
        self.account_b.write({"phone_number_id": "777000111222333"})
        with self.processing():
            event.action_reprocess()
        self.assertEqual((event.state, event.company_id), ("done", self.company_b))
        self.assert_imported(chunk, company=self.company_b)
        # As if the import had failed: the person presses "Reprocess" on the delivery.
        self.history_rows(self.company_b).unlink()
        event.write({"state": "failed", "error": "OperationalError: ..."})
        with self.processing():
            event.delivery_id.action_reprocess()
        self.assertEqual((event.state, event.error), ("done", False))
        self.assert_imported(chunk, company=self.company_b)
        self.assertFalse(self.history_rows(self.company_a))

    def test_body_is_read_in_slices_of_bytes(self):
        text = "ação 😊 " * 40000  # multi-byte characters across every slice boundary
        body = json.dumps({"object": "whatsapp_business_account", "entry": [], "pad": text},
                          ensure_ascii=False)
        delivery = self.env["wac.webhook.delivery"].create({
            "body": body, "body_sha256": "1" * 64, "state": "received"})
        expected = body.encode()
        self.assertGreater(len(expected), 5 * BODY_SLICE_BYTES)
        reader = delivery._wac_open_body()
        self.assertEqual(reader.read(0), b"")
        parts = [reader.read(1000), reader.read(BODY_SLICE_BYTES * 2)]
        parts.append(reader.read())
        self.assertEqual(b"".join(parts), expected)
        self.assertEqual(reader.read(), b"")
        # Closed early, or twice, or after its savepoint was rolled back: no error, and a new
        # reader starts again from the beginning.
        early = delivery._wac_open_body()
        self.assertEqual(early.read(10), expected[:10])
        early.close()
        early.close()
        with self.assertRaises(ZeroDivisionError), self.env.cr.savepoint():
            lost = delivery._wac_open_body()
            lost.read(10)
            raise ZeroDivisionError
        lost.close()
        self.assertEqual(delivery._wac_open_body().read(), expected)
        self.env.cr.execute("SELECT count(*) FROM pg_cursors WHERE name LIKE 'wac_body_%%'")
        self.assertEqual(self.env.cr.fetchone()[0], 0, "a reader read to its end is closed")
