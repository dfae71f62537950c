from datetime import datetime, timedelta

from odoo.tests import tagged

from . import payloads as P
from .common import WacHttpCase


@tagged("post_install", "-at_install")
class TestWebhookFields(WacHttpCase):
    """Every handled field, end to end: signed POST, job, visible effect."""

    def deliver(self, *payloads):
        self.deliver_signed(*payloads)
        events = self.env["wac.webhook.event"].search([])
        self.assertFalse(events.filtered(lambda e: e.state == "failed").mapped("error"))
        return events

    def message(self, wamid):
        return self.env["wac.message"].search([("wamid", "=", wamid)])

    # messages: inbound ------------------------------------------------------------------------

    def test_inbound_text_creates_contact_posts_and_opens_window(self):
        self.deliver(P.inbound_text(from_="5511991234567", profile_name="Maria Silva",
                                    timestamp="1749416383"))
        message = self.message(P.TEXT_WAMID)
        contact = message.contact_id
        self.assertRecordValues(message, [{"direction": "in", "source": "customer",
                                           "company_id": self.company_a.id, "status": "received"}])
        self.assertEqual((contact.e164, contact.company_id), ("+5511991234567", self.company_a))
        self.assertEqual(contact.partner_id.name, "Maria Silva")
        self.assertEqual(contact.partner_id.company_id, self.company_a)
        received = datetime(2025, 6, 8, 20, 59, 43)
        self.assertEqual(contact.last_inbound_at, received)
        self.assertEqual(contact.window_expires_at, received + timedelta(hours=24))
        self.assertIn("Does it come in another color?",
                      contact.partner_id.message_ids[0].body)

    def test_brazil_ninth_digit_is_one_contact(self):
        partner = self.env["res.partner"].create({
            "name": "Ana Costa", "mobile": "+55 21 99876-5432", "company_id": self.company_a.id})
        # Meta sends the legacy 12-digit wa_id (no 9) for an account registered before 2016.
        self.deliver(P.inbound_text(wamid="wamid.a1", from_="552198765432"),
                     P.inbound_text(wamid="wamid.a2", from_="5521998765432"))
        contacts = self.env["wac.contact"].search([("company_id", "=", self.company_a.id)])
        self.assertEqual(len(contacts), 1)
        self.assertEqual(contacts.partner_id, partner)
        self.assertEqual(contacts.wa_id, "552198765432", "the raw wa_id is kept")

    def test_argentina_549_and_bsuid(self):
        self.deliver(
            P.inbound_text(wamid="wamid.ar1", from_="5491155554444", user_id="AR.13491208655"),
            P.inbound_text(wamid="wamid.ar2", from_="541155554444"))
        contact = self.env["wac.contact"].search([("company_id", "=", self.company_a.id)])
        self.assertEqual(len(contact), 1)
        self.assertEqual(contact.bsuid, "AR.13491208655")

    def test_opt_out_and_back_in_by_keyword(self):
        self.deliver(P.inbound_text(wamid="wamid.o1", body="  parar "))
        contact = self.message("wamid.o1").contact_id
        self.assertTrue(contact.opted_out)
        self.assertIn("PARAR", contact.opt_out_reason.upper())
        self.deliver(P.inbound_text(wamid="wamid.o2", body="Cancelar envios"))
        self.assertTrue(contact.opted_out)
        self.deliver(P.inbound_text(wamid="wamid.o3", body="Voltar"))
        self.assertFalse(contact.opted_out)
        # "Cancelar" cancels an appointment; it is not "stop sending me messages".
        self.deliver(P.inbound_text(wamid="wamid.o5", body="Cancelar"))
        self.assertFalse(contact.opted_out)
        # A tapped button is an answer, whatever its label.
        self.deliver(P.button_reply(wamid="wamid.o6", text="Parar", payload="CANCEL:42"))
        self.assertFalse(contact.opted_out)
        # A sentence containing the word is a conversation, not an opt-out.
        self.deliver(P.inbound_text(wamid="wamid.o4", body="Não posso parar agora, até amanhã"))
        self.assertFalse(contact.opted_out)

    def test_keywords_ignore_punctuation_like_answers(self):
        # One fold for keywords and answers: "SIM!" confirms, so "STOP!" must opt out.
        self.deliver(P.inbound_text(wamid="wamid.p1", body="STOP!"))
        contact = self.message("wamid.p1").contact_id
        self.assertTrue(contact.opted_out)
        self.deliver(P.inbound_text(wamid="wamid.p2", body="Voltar."))
        self.assertFalse(contact.opted_out)

    def test_button_reply_reaction_location_and_system(self):
        payloads = [P.button_reply()]
        for kind, extra in (("reaction", {"reaction": {"message_id": P.SENT_WAMID,
                                                       "emoji": "👍"}}),
                            ("location", {"location": {"latitude": -23.55, "longitude": -46.63,
                                                       "name": "Clínica"}})):
            payload = P.inbound_text(wamid="wamid.%s" % kind)
            message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
            message.pop("text")
            message.update(type=kind, **extra)
            payloads.append(payload)
        payloads.append(P.system_changed_number())
        self.deliver(*payloads)
        button = self.env["wac.message"].search([("message_type", "=", "button")])
        self.assertEqual((button.button_payload, button.context_wamid),
                         ("CONFIRM:42", P.SENT_WAMID))
        self.assertEqual(self.message("wamid.reaction").body, "👍")
        self.assertIn("Clínica", self.message("wamid.location").body)
        system = self.env["wac.message"].search([("message_type", "=", "system")])
        self.assertTrue(system.body)

    # messages: statuses -----------------------------------------------------------------------

    def _outbound(self, wamid, **vals):
        contact = self.env["wac.contact"]._wac_resolve(
            self.account_a, [(P.USER_WA_ID, None, None)])[P.USER_WA_ID]
        return self.env["wac.message"].create(dict({
            "company_id": self.company_a.id, "account_id": self.account_a.id,
            "contact_id": contact.id, "wamid": wamid, "direction": "out", "source": "api",
            "status": "accepted"}, **vals))

    def test_statuses_out_of_order_never_downgrade(self):
        message = self._outbound(P.SENT_WAMID)
        self.deliver(
            P.statuses(items=((P.SENT_WAMID, "read", "1750030090"),)),
            P.statuses(items=((P.SENT_WAMID, "sent", "1750030073"),),
                       biz_opaque_callback_data="appointment:42:reminder"),
            P.statuses(items=((P.SENT_WAMID, "delivered", "1750030080"),)),
            P.statuses(items=((P.SENT_WAMID, "read", "1750030090"),)),  # duplicate
        )
        self.assertEqual(message.status, "read")
        self.assertEqual(message.status_ids.mapped("status"), ["sent", "delivered", "read"])
        self.assertEqual(message.biz_opaque_callback_data, "appointment:42:reminder")

    def test_read_without_delivered_and_failed_with_meta_error(self):
        read = self._outbound("wamid.read-only")
        failed = self._outbound(P.FAILED_WAMID)
        self.deliver(
            P.statuses(items=(("wamid.read-only", "sent", "1750030073"),
                              ("wamid.read-only", "read", "1750030074"))),
            P.statuses(items=((P.FAILED_WAMID, "failed", "1751142888"),)),
        )
        self.assertEqual(read.status, "read")
        self.assertRecordValues(failed, [{
            "status": "failed", "error_code": 131049,
            "error_title": "This message was not delivered to maintain healthy ecosystem "
                           "engagement."}])
        self.assertIn("healthy ecosystem", failed.error_details)

    def test_status_waiting_for_a_wamid_set_after_the_message(self):
        self.deliver(P.statuses(items=(("wamid.sent-late", "sent", "1750030073"),)))
        message = self._outbound(False, status="pending")
        message.wamid = "wamid.sent-late"
        self.assertEqual(message.status, "sent")
        self.assertEqual(message.status_ids.status, "sent")

    def test_status_before_its_message_is_kept_and_applied(self):
        self.deliver(P.statuses(items=(("wamid.later", "delivered", "1750030080"),)))
        status = self.env["wac.message.status"].search([("wamid", "=", "wamid.later")])
        self.assertEqual((status.company_id, status.message_id.id), (self.company_a, False))
        message = self._outbound("wamid.later")
        self.assertEqual(message.status, "delivered")
        self.assertEqual(status.message_id, message)

    def test_out_of_band_error_is_kept_on_the_account(self):
        value = {"messaging_product": "whatsapp", "metadata": P.metadata(),
                 "errors": [{"code": 131060, "title": "Unsupported message",
                             "error_data": {"details": "Check the WhatsApp Business App"}}]}
        events = self.deliver(P.envelope("messages", value))
        self.assertEqual(events.summary, "error 131060")
        self.assertIn("131060", self.account_a.last_error)
        self.assertIn("Check the WhatsApp Business App", self.account_a.last_error)

    # smb_message_echoes -------------------------------------------------------------------------

    def test_echo_is_outbound_from_the_app_and_opens_no_window(self):
        self.deliver(P.echo(), P.echo())
        echo = self.message(P.ECHO_WAMID)
        self.assertRecordValues(echo, [{"direction": "out", "source": "app",
                                        "recipient_input": P.USER_WA_ID}])
        self.assertFalse(echo.contact_id.window_expires_at)
        self.assertFalse(echo.contact_id.last_inbound_at)

    # history ------------------------------------------------------------------------------------

    def test_history_import_progress_and_placeholder(self):
        self.deliver(P.history_chunk(phase=0, chunk_order=2, progress=55))
        messages = self.env["wac.message"].search([("source", "=", "history")])
        self.assertEqual(len(messages), 4)
        self.assertEqual(set(messages.mapped("direction")), {"in", "out"})
        self.assertEqual(self.message(P.PLACEHOLDER_WAMID).is_placeholder, True)
        self.assertEqual(min(messages.mapped("message_at")), datetime(2025, 2, 10, 23, 42, 35))
        self.assertRecordValues(self.account_a, [{
            "history_state": "importing", "history_progress": 55, "history_chunks": 1,
            "history_messages": 4}])
        self.assertFalse(self.env["wac.contact"].search([]).filtered("window_expires_at"),
                         "history never opens the service window")
        # Chunks arrive out of order and twice; the media follows the placeholder.
        self.deliver(P.history_chunk(phase=0, chunk_order=1, progress=100), P.history_media())
        self.assertEqual(self.env["wac.message"].search_count([("source", "=", "history")]), 4)
        self.assertRecordValues(self.account_a, [{"history_state": "done",
                                                  "history_progress": 100, "history_chunks": 2,
                                                  "history_messages": 4}])
        chunks = self.account_a.history_chunk_ids
        self.assertEqual([(c.chunk_order, c.progress) for c in chunks], [(1, 100), (2, 55)])
        # A late chunk of a lower progress does not reopen a finished sync.
        self.deliver(P.history_chunk(phase=0, chunk_order=2, progress=55,
                                     threads=[]))
        self.assertEqual(self.account_a.history_state, "done")
        upgraded = self.message(P.PLACEHOLDER_WAMID)
        self.assertRecordValues(upgraded, [{"is_placeholder": False, "message_type": "image",
                                            "media_id": "24230790383178626"}])

    def test_several_chunks_in_one_webhook_are_counted_once_each(self):
        def thread(wa_id, count):
            return [{"id": wa_id, "messages": [
                {"from": wa_id, "id": "wamid.%s.%d" % (wa_id, i), "timestamp": "1739230955",
                 "type": "text", "text": {"body": "oi %d" % i}} for i in range(count)]}]
        payload = P.history_chunk(phase=1, chunk_order=1, progress=40,
                                  threads=thread("5511911110000", 3))
        second = P.history_chunk(phase=1, chunk_order=2, progress=80,
                                 threads=thread("5511922220000", 2))
        value = payload["entry"][0]["changes"][0]["value"]
        value["history"] += second["entry"][0]["changes"][0]["value"]["history"]
        self.deliver(payload)
        self.assertRecordValues(self.account_a, [{"history_chunks": 2, "history_messages": 5,
                                                  "history_progress": 80, "history_phase": 1}])
        self.assertEqual(self.account_a.history_chunk_ids.mapped("message_count"), [3, 2])

    def test_history_declined(self):
        self.deliver(P.history_declined())
        self.assertEqual(self.account_a.history_state, "declined")

    def test_history_of_thousands_of_messages_is_imported_in_batches(self):
        threads = [{"id": "55119%08d" % i, "messages": [
            {"from": "55119%08d" % i, "id": "wamid.h%05d.%d" % (i, j),
             "timestamp": str(1739230955 + j), "type": "text", "text": {"body": "msg %d" % j},
             "history_context": {"status": "READ"}} for j in range(5)]} for i in range(600)]
        self.deliver(P.history_chunk(threads=threads, progress=100))
        self.assertEqual(self.env["wac.message"].search_count([("source", "=", "history")]), 3000)
        self.assertEqual(self.env["wac.contact"].search_count(
            [("company_id", "=", self.company_a.id)]), 600)

    # smb_app_state_sync -------------------------------------------------------------------------

    def test_state_sync_add_edit_remove_never_deletes_partner(self):
        self.deliver(P.state_sync_add(phone_number="5511987651234", full_name="João Pereira"))
        contact = self.env["wac.contact"].search([("company_id", "=", self.company_a.id)])
        partner = contact.partner_id
        self.assertEqual((partner.name, contact.in_app_address_book), ("João Pereira", True))
        self.deliver(P.state_sync_add(phone_number="5511987651234", full_name="João P.",
                                      timestamp="1739321050"))
        self.assertEqual(contact.app_name, "João P.")
        self.deliver(P.state_sync_remove(phone_number="5511987651234"))
        self.assertFalse(contact.active)
        self.assertTrue(partner.exists() and partner.active)

    # account_update -----------------------------------------------------------------------------

    def test_partner_removed_disconnects_pauses_and_notifies(self):
        self.go_live(self.account_a)
        self.deliver(P.account_update_partner_removed(
            waba_info_waba_id=self.account_a.waba_id, waba_id="2949482758682047"))
        self.assertRecordValues(self.account_a, [{
            "state": "disconnected", "automation_paused": True,
            "state_reason": "PRIMARY_INACTIVITY / SYSTEM"}])
        activity = self.account_a.activity_ids
        self.assertIn(self.manager_a, activity.user_id)
        self.assertNotIn(self.manager_b, activity.user_id)
        self.assertEqual(self.account_b.state, "connected")

    def test_offboarded_then_reconnected(self):
        for payload in (P.offboarded(waba_id=self.account_a.waba_id),
                        P.reconnected(waba_id=self.account_a.waba_id)):
            self.deliver(payload)
            if payload is not None and self.account_a.state == "offboarded":
                self.assertTrue(self.account_a.automation_paused)
        self.assertRecordValues(self.account_a, [{"state": "connected",
                                                  "automation_paused": False}])
        self.assertEqual(len(self.env["wac.webhook.event"].search([])), 2)

    # templates and preferences ------------------------------------------------------------------

    def test_template_status_quality_category(self):
        self.deliver(P.template_status(event="APPROVED"))
        template = self.env["wac.template"].search([("account_id", "=", self.account_a.id)])
        self.assertRecordValues(template, [{"name": "appointment_reminder", "language": "pt_BR",
                                            "status": "APPROVED", "category": "UTILITY"}])
        self.deliver(P.template_status(event="PAUSED", reason="NONE", time=1739321099),
                     P.template_quality(), P.template_category())
        self.assertEqual(template.status, "PAUSED")
        self.assertTrue(template.quality_score)
        self.assertEqual(len(template.search([])), 1)

    def test_user_preferences_marketing_stop_and_resume(self):
        self.deliver(P.user_preferences(value="stop"))
        contact = self.env["wac.contact"].search([("company_id", "=", self.company_a.id)])
        self.assertTrue(contact.marketing_opt_out)
        self.assertFalse(contact.opted_out, "utility messages still go through")
        self.deliver(P.user_preferences(value="resume", timestamp=1731705799))
        self.assertFalse(contact.marketing_opt_out)
