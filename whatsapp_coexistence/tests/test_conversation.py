"""One thread per customer and company, replies inside the 24 h window, notifications.

Real PostgreSQL, webhooks signed and posted through Odoo's HTTP server, replies sent over
HTTP to the fake Graph server: nothing but the Graph client's seam is in the way.
"""

from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged

from . import payloads as p
from .common import CLINIC, SALON, WacHttpCase
from .common_automation import MARIA, WacAutomationMixin

MARIA_WA_ID = "551191234567"  # the fake's wa_id for MARIA
CLINIC_DIGITS = "5511987654321"


@tagged("post_install", "-at_install")
class TestConversation(WacAutomationMixin, WacHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._wac_automation_setup()
        cls.receptionist = cls.user_a
        cls.account_a.conversation_team_ids = cls.receptionist
        # Notified in Odoo's inbox: the test database sends no email.
        (cls.receptionist | cls.organizer_a).notification_type = "inbox"

    # ------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------

    def customer_writes(self, text, wamid, when=None, account=None, sender=MARIA_WA_ID):
        """A signed inbound webhook of ``sender`` through HTTP, processed by its jobs."""
        account = account or self.account_a
        ids = CLINIC if account == self.account_a else SALON
        timestamp = str(int((when or fields.Datetime.now()).timestamp()))
        self.deliver_signed(p.inbound_text(
            phone_number_id=ids["phone_number_id"], waba_id=ids["waba_id"], wamid=wamid,
            from_=sender, body=text, timestamp=timestamp, profile_name="Maria Silva"))

    def conversation(self, account=None):
        account = account or self.account_a
        return self.env["wac.conversation"].search([
            ("company_id", "=", account.company_id.id),
            ("contact_id.wa_id", "=", MARIA_WA_ID)])

    def reply(self, conversation, text=None, template=None, values=None, user=None):
        """Fill the composer like a person and press Send; return the composer."""
        env = self.env(user=user or self.receptionist)
        form = Form(env["wac.conversation.reply"].with_context(
            default_conversation_id=conversation.id))
        if template:
            form.mode = "template"
            form.template_id = template
            for index, value in enumerate(values or []):
                with form.param_ids.edit(index) as line:
                    line.value = value
        else:
            form.body = text
        composer = form.save()
        composer.action_send()
        return composer

    def replies(self, conversation):
        return conversation.message_ids_wac.filtered(lambda m: m.origin == "reply")

    # ------------------------------------------------------------
    # The thread
    # ------------------------------------------------------------

    def test_echoes_history_and_inbound_share_one_thread_in_time_order(self):
        """History arrives after newer messages: the thread still reads in WhatsApp's order,
        not in the order the rows were stored."""
        self.customer_writes("Oi, tudo bem?", "wamid.IN1")
        self.deliver_signed(p.echo(phone_number_id=CLINIC["phone_number_id"],
                                   waba_id=CLINIC["waba_id"], wamid="wamid.ECHO1",
                                   to=MARIA_WA_ID, body="Tudo, e você?",
                                   from_=CLINIC_DIGITS,
                                   timestamp=str(int(fields.Datetime.now().timestamp()) + 5)))
        old = int((fields.Datetime.now() - timedelta(days=30)).timestamp())
        self.deliver_signed(p.history_chunk(
            phone_number_id=CLINIC["phone_number_id"], waba_id=CLINIC["waba_id"],
            threads=[{"id": MARIA_WA_ID, "messages": [
                {"from": MARIA_WA_ID, "id": "wamid.H1", "timestamp": str(old),
                 "type": "text", "text": {"body": "Mensagem antiga"},
                 "history_context": {"status": "READ"}},
                {"from": CLINIC_DIGITS, "id": "wamid.H2", "timestamp": str(old + 60),
                 "type": "text", "text": {"body": "Resposta antiga"},
                 "history_context": {"status": "READ"}}]}]))
        conversation = self.conversation()
        self.assertEqual(len(conversation), 1, "one thread per customer and company")
        thread = conversation.message_ids_wac.sorted(lambda m: (m.message_at, m.id))
        self.assertEqual(thread.mapped("body"), [
            "Mensagem antiga", "Resposta antiga", "Oi, tudo bem?", "Tudo, e você?"])
        self.assertEqual(thread.mapped("origin"), ["history", "history", "customer", "app"])
        self.assertEqual(thread.mapped("status"), ["read", "read", "received", "sent"])
        self.assertFalse(conversation.needs_answer, "the Business App answered last")

    def test_messages_recorded_before_threads_are_linked_on_upgrade(self):
        """Rows written before this feature (no conversation) get one at the next upgrade."""
        self.customer_writes("Antes", "wamid.OLD1")
        conversation = self.conversation()
        message = conversation.message_ids_wac
        self.env.cr.execute("UPDATE wac_message SET conversation_id = NULL WHERE id = %s",
                            [message.id])
        self.env.cr.execute("DELETE FROM wac_conversation WHERE id = %s", [conversation.id])
        self.env.invalidate_all()
        self.env["wac.conversation"].init()
        linked = self.conversation()
        self.assertEqual(linked.message_ids_wac, message)
        self.assertTrue(linked.needs_answer)

    def test_a_message_moved_to_another_contact_leaves_both_threads_right(self):
        """A number change moves messages between contacts: the thread a message left shows
        its own last message again, the one it joined shows the moved one."""
        earlier = fields.Datetime.now() - timedelta(hours=2)
        self.customer_writes("Primeira", "wamid.MOVE1", when=earlier)
        self.customer_writes("Segunda", "wamid.MOVE2")
        self.customer_writes("Outra pessoa", "wamid.MOVE3", when=earlier,
                             sender="551197770000")
        maria = self.conversation()
        other = maria.search([("contact_id.wa_id", "=", "551197770000")])
        moved = maria.message_ids_wac.filtered(lambda m: m.wamid == "wamid.MOVE2")
        self.assertEqual(maria.last_message_at, moved.message_at)
        moved.write({"contact_id": other.contact_id.id,
                     "message_at": moved.message_at + timedelta(minutes=1)})
        (maria | other).invalidate_recordset()
        self.assertEqual(moved.conversation_id, other)
        self.assertEqual(maria.last_message_at, earlier.replace(microsecond=0))
        self.assertEqual(other.last_message_at, moved.message_at)

    def test_threads_are_isolated_between_companies(self):
        self.customer_writes("Para a clínica", "wamid.A1")
        self.customer_writes("Para o salão", "wamid.B1", account=self.account_b)
        thread_a, thread_b = self.conversation(), self.conversation(self.account_b)
        self.assertTrue(thread_a and thread_b and thread_a != thread_b)
        user_b = self.env(user=self.manager_b)
        self.assertEqual(user_b["wac.conversation"].search([]), thread_b.with_env(user_b))
        with self.assertRaises(AccessError):
            thread_a.with_env(user_b).message_ids_wac.mapped("body")
        with self.assertRaises(AccessError):
            thread_a.message_ids_wac.with_env(user_b).read(["body"])
        attachment = self.env["ir.attachment"].create({
            "name": "foto.jpg", "raw": b"\xff\xd8\xff", "res_model": "wac.message",
            "res_id": thread_a.message_ids_wac.id})
        with self.assertRaises(AccessError):
            attachment.with_env(user_b).read(["raw"])

    # ------------------------------------------------------------
    # Notifications
    # ------------------------------------------------------------

    def test_one_notification_per_burst_until_someone_answers(self):
        inbox = self.receptionist.partner_id
        self.customer_writes("Oi", "wamid.N1")
        self.customer_writes("Posso remarcar?", "wamid.N2")
        conversation = self.conversation()
        notified = conversation.message_ids.filtered(lambda m: inbox in m.partner_ids)
        self.assertEqual(len(notified), 1, "one notification for the burst")
        self.assertIn("Oi", notified.body)
        self.reply(conversation, "Claro! Qual horário?")
        self.customer_writes("Amanhã às 10h", "wamid.N3")
        notified = conversation.message_ids.filtered(lambda m: inbox in m.partner_ids)
        self.assertEqual(len(notified), 2, "a new burst after the answer")

    def test_organizer_of_the_next_appointment_is_notified(self):
        self.account_a.conversation_notify = "organizer"
        self.make_event(self.maria, start=fields.Datetime.now() + timedelta(days=2))
        self.customer_writes("Vou atrasar", "wamid.O1")
        conversation = self.conversation()
        self.assertEqual(conversation.partner_id, self.maria)
        notification = conversation.message_ids.filtered(lambda m: m.partner_ids)
        self.assertEqual(notification.partner_ids, self.organizer_a.partner_id)

    # ------------------------------------------------------------
    # Replies
    # ------------------------------------------------------------

    def test_text_reply_goes_once_and_its_status_follows(self):
        self.customer_writes("Oi", "wamid.R1")
        conversation = self.conversation()
        composer = self.reply(conversation, "Olá Maria!")
        (sent,) = self.fake.messages()
        self.assertEqual(sent["payload"]["text"]["body"], "Olá Maria!")
        reply = self.replies(conversation)
        self.assertRecordValues(reply, [{"wamid": sent["wamid"], "status": "accepted",
                                         "body": "Olá Maria!", "wa_attempt_open": False}])
        composer.action_send()  # pressed again: the first press decided
        self.assertEqual(len(self.fake.messages()), 1)
        self.deliver_signed(p.statuses(
            items=[(sent["wamid"], "delivered", "1750030074"), (sent["wamid"], "read",
                                                                 "1750030075")],
            phone_number_id=CLINIC["phone_number_id"], waba_id=CLINIC["waba_id"],
            recipient_id=MARIA_WA_ID))
        self.assertEqual(reply.status, "read")
        self.assertFalse(conversation.needs_answer)

    def test_pdf_reply_is_uploaded_sent_and_kept_in_the_thread(self):
        """Text and a PDF: the file goes through Meta's /media upload, then as a document
        message; the thread shows it on the reply."""
        self.customer_writes("Pode mandar o orçamento?", "wamid.F1")
        conversation = self.conversation()
        pdf = self.env["ir.attachment"].with_user(self.receptionist).create({
            "name": "orcamento.pdf", "raw": b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n",
            "mimetype": "application/pdf"})
        form = Form(self.env["wac.conversation.reply"].with_user(self.receptionist)
                    .with_context(default_conversation_id=conversation.id))
        form.body = "Segue o orçamento"
        form.attachment_ids.add(pdf)
        form.save().action_send()
        self.assertEqual(len(self.graph_requests(path_contains="/media", method="POST")), 1)
        text, document = self.fake.messages()
        self.assertEqual(text["payload"]["text"]["body"], "Segue o orçamento")
        self.assertEqual(document["payload"]["type"], "document")
        self.assertEqual(document["payload"]["document"]["filename"], "orcamento.pdf")
        replies = self.replies(conversation).sorted("id")
        self.assertEqual(replies.mapped("message_type"), ["text", "document"])
        self.assertEqual(replies[1].wamid, document["wamid"])
        self.assertEqual(replies[1].attachment_ids.mapped("name"), ["orcamento.pdf"])

    def test_window_boundary(self):
        """Just inside the window a text goes; one second after it, only a template."""
        self.customer_writes("Oi", "wamid.W1")
        conversation = self.conversation()
        expires = conversation.window_expires_at
        with self.clock(expires - timedelta(seconds=1)):
            conversation.invalidate_recordset(["window_open"])
            self.reply(conversation, "Ainda dá tempo")
        self.assertEqual(len(self.fake.messages()), 1)
        with self.clock(expires + timedelta(seconds=1)):
            conversation.invalidate_recordset(["window_open"])
            composer = self.env["wac.conversation.reply"].with_user(self.receptionist).create(
                {"conversation_id": conversation.id, "body": "Tarde demais"})
            self.assertEqual(composer.mode, "template", "outside the window: template mode")
            composer.mode = "text"
            with self.assertRaisesRegex(UserError, "More than 24 h"):
                composer.action_send()
        self.assertEqual(len(self.fake.messages()), 1, "nothing left outside the window")

    def test_template_outside_the_window(self):
        self.customer_writes("Oi", "wamid.T1",
                             when=fields.Datetime.now() - timedelta(hours=30))
        conversation = self.conversation()
        self.assertFalse(conversation.window_open)
        template = self.tpl_confirmation
        form = Form(self.env["wac.conversation.reply"].with_user(self.receptionist)
                    .with_context(default_conversation_id=conversation.id))
        self.assertEqual(form.mode, "template")
        form.template_id = template
        self.assertIn("Maria", form.preview, "the customer's name is filled in")
        lines = form.param_ids
        for index in range(len(lines)):
            with form.param_ids.edit(index) as line:
                line.value = line.value or "amanhã"
        composer = form.save()
        composer.action_send()
        (sent,) = self.fake.messages()
        self.assertEqual(sent["payload"]["type"], "template")
        self.assertEqual(sent["payload"]["template"]["name"], template.name)
        reply = self.replies(conversation)
        self.assertEqual(reply.message_type, "template")
        self.assertEqual(reply.body, composer.preview)

    def test_131047_is_explained(self):
        """Meta's clock decides in the end: its refusal says what to do."""
        self.customer_writes("Oi", "wamid.X1")
        conversation = self.conversation()
        self.fake.add_fault(code=131047, status=400, match={"path": "/messages"})
        self.reply(conversation, "Olá")
        reply = self.replies(conversation)
        self.assertEqual(reply.status, "failed")
        self.assertIn("template", reply.error_title)

    def test_opted_out_customer_gets_nothing(self):
        self.customer_writes("Oi", "wamid.S1")
        conversation = self.conversation()
        conversation.contact_id._wac_set_opt_out(True, "PARAR")
        with self.assertRaisesRegex(UserError, "opted out"):
            self.reply(conversation, "Olá")
        self.assertEqual(self.fake.messages(), [])
        self.assertFalse(self.replies(conversation))

    def test_disconnected_account_refuses_but_automation_mode_does_not(self):
        self.customer_writes("Oi", "wamid.D1")
        conversation = self.conversation()
        self.account_a.write({"automation_mode": "disabled"})
        self.reply(conversation, "Mesmo com a automação desligada")
        self.assertEqual(len(self.fake.messages()), 1, "mode governs automation only")
        self.account_a.write({"state": "needs_reauth"})
        with self.assertRaisesRegex(UserError, "not connected"):
            self.reply(conversation, "Sem conexão")
        self.assertEqual(len(self.fake.messages()), 1)

    def test_dropped_connection_never_sends_twice(self):
        """Meta accepted the reply, then the answer was lost: the attempt stays open, the
        next reply waits, and the status webhook carrying the key adopts the wamid."""
        self.customer_writes("Oi", "wamid.C1")
        conversation = self.conversation()
        self.fake.add_fault(drop=True, processed=True, match={"path": "/messages"})
        composer = self.reply(conversation, "Olá!")
        (accepted,) = self.fake.messages()
        reply = self.replies(conversation)
        self.assertTrue(reply.wa_attempt_open)
        self.assertFalse(reply.wamid)
        composer.action_send()
        with self.assertRaisesRegex(UserError, "may have delivered it"):
            self.reply(conversation, "Olá!")
        self.assertEqual(len(self.fake.messages()), 1, "never sent twice")
        self.deliver_signed(p.statuses(
            items=[(accepted["wamid"], "sent", "1750030074")],
            phone_number_id=CLINIC["phone_number_id"], waba_id=CLINIC["waba_id"],
            recipient_id=MARIA_WA_ID, biz_opaque_callback_data=reply.wa_send_key))
        self.age_attempt(reply, 120)
        self.env["wac.message"]._wac_cron_settle_attempts()
        self.assertRecordValues(reply, [{"wamid": accepted["wamid"], "status": "sent",
                                         "wa_attempt_open": False}])
        self.reply(conversation, "Chegou?")
        self.assertEqual(len(self.fake.messages()), 2)

    def test_reply_uses_the_companys_rate_limit(self):
        """The reply takes its slot in the bucket the automation uses."""
        self.customer_writes("Oi", "wamid.L1")
        conversation = self.conversation()
        self.reply(conversation, "Olá")
        self.env.cr.execute("SELECT count(*) FROM wac_rate_bucket WHERE key = %s",
                            ["company:%d" % self.company_a.id])
        self.assertEqual(self.env.cr.fetchone()[0], 1)

    def test_thread_is_reachable_from_partner_contact_and_appointment(self):
        self.customer_writes("Oi", "wamid.P1")
        conversation = self.conversation()
        env = self.env(user=self.receptionist)
        event = self.make_event(self.maria)
        for action in (self.maria.with_env(env).action_wa_conversations(),
                       conversation.contact_id.with_env(env).action_wa_conversation(),
                       event.with_env(env).action_wa_conversation()):
            self.assertEqual((action["res_model"], action["res_id"]),
                             ("wac.conversation", conversation.id))

    def test_mobile_maria_is_the_same_person(self):
        """The partner of an appointment and the customer who writes are one thread."""
        self.assertEqual(self.maria.mobile, MARIA)
        self.customer_writes("Oi", "wamid.M1")
        self.assertEqual(self.conversation().partner_id, self.maria)
