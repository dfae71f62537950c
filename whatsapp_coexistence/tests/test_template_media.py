"""Appointment messages with an image or document header and a URL button with a variable, sent
through the send job to the fake Graph server, which checks the components like Meta."""

import base64

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from odoo.addons.queue_job.exception import RetryableJobError

from ..tools.wa_cloud.send_key import start_key
from .common_automation import FUTURE_START, WacAutomationCase

PNG = b"\x89PNG\r\n\x1a\n" + b"\x07" * 4000
PDF = b"%PDF-1.7\n" + b"\x08" * 9000
BUTTONS = {"type": "BUTTONS", "buttons": [
    {"type": "QUICK_REPLY", "text": "Confirmar"},
    {"type": "URL", "text": "Ver consulta", "url": "https://clinica.example/c/{{1}}"}]}
TEMPLATES = [
    {"name": "consulta_imagem", "language": "pt_BR", "category": "UTILITY", "components": [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1h"]}},
        {"type": "BODY", "text": "Olá {{1}}, sua consulta é {{2}}."}, BUTTONS]},
    {"name": "consulta_preparo", "language": "pt_BR", "category": "UTILITY", "components": [
        {"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": ["4::cGRm"]}},
        {"type": "BODY", "text": "Olá {{1}}, leia o preparo para {{2}}."}]},
]


@tagged("post_install", "-at_install")
class TestTemplateMedia(WacAutomationCase):
    def setUp(self):
        super().setUp()
        state = self.fake.state
        with state.lock:
            for data in TEMPLATES:
                tpl = state._new_template_record(self.account_a.waba_id, data)
                state.wabas[self.account_a.waba_id]["template_ids"].append(tpl["id"])
        self.account_a.action_sync_templates()
        self.tpl_image = self._template(self.account_a, "consulta_imagem", "pt_BR")
        self.tpl_document = self._template(self.account_a, "consulta_preparo", "pt_BR")
        _trap, self.event = self.enqueue(self.make_event, self.maria)
        self.fake.clear_requests()

    def use(self, template, content=None, filename=None, **vals):
        """Map the confirmation to ``template`` with its guessed lines and a header file."""
        Mapping = self.env["wac.template.mapping"]
        self.map_confirmation.write(dict({
            "template_id": template.id,
            "param_ids": [Command.clear()] + [
                Command.create(v) for v in Mapping._wac_guess_lines(template)],
            "header_file": base64.b64encode(content) if content else False,
            "header_filename": filename,
        }, **vals))
        return self.map_confirmation

    def sent_components(self):
        (request,) = self.graph_requests(path_contains="/messages")
        return request["json"]["template"]["components"]

    def test_image_header_and_url_button_go_in_meta_format(self):
        self.use(self.tpl_image, PNG, "consulta.png")
        result = self.send(self.event, "confirmation", self.maria)
        self.assertTrue(result.startswith("sent wamid."), result)
        (upload,) = self.fake.uploads()
        self.assertEqual(self.fake.upload(upload["id"])["content"], PNG)
        components = self.sent_components()
        self.assertEqual(components[0], {"type": "header", "parameters": [
            {"type": "image", "image": {"id": upload["id"]}}]})
        self.assertEqual(components[1]["type"], "body")
        self.assertEqual([p["text"] for p in components[1]["parameters"]],
                         ["Maria", "terça-feira, 2 de fevereiro de 2027"])
        self.assertEqual(components[2:], [
            {"type": "button", "sub_type": "quick_reply", "index": "0",
             "parameters": [{"type": "payload", "payload": "CONFIRM:%d" % self.event.id}]},
            {"type": "button", "sub_type": "url", "index": "1",
             "parameters": [{"type": "text", "text": str(self.event.id)}]}])
        self.assertTrue(self.message_of(self.event, "confirmation", self.maria).wamid)
        # The next appointment reuses the uploaded file's id.
        _trap, other = self.enqueue(self.make_event, self.joao)
        self.assertTrue(self.send(other, "confirmation", self.joao).startswith("sent"))
        self.assertEqual(len(self.fake.uploads()), 1)
        self.assert_graph_called("POST", "/media", count=1)

    def test_document_header_carries_its_file_name(self):
        self.use(self.tpl_document, PDF, "preparo-colonoscopia.pdf")
        result = self.send(self.event, "confirmation", self.maria)
        self.assertTrue(result.startswith("sent wamid."), result)
        (upload,) = self.fake.uploads()
        self.assertEqual((upload["kind"], upload["filename"]),
                         ("document", "preparo-colonoscopia.pdf"))
        self.assertEqual(self.sent_components()[0], {"type": "header", "parameters": [
            {"type": "document", "document": {"id": upload["id"],
                                              "filename": "preparo-colonoscopia.pdf"}}]})

    def assert_refused(self, pattern, func, *args, **kwargs):
        """``func`` raises a ``ValidationError`` matching ``pattern``, and its writes are
        rolled back (Odoo's ``assertRaises`` runs it in a savepoint)."""
        with self.assertRaises(ValidationError) as caught:
            func(*args, **kwargs)
        self.assertRegex(str(caught.exception), pattern)

    def test_missing_or_wrong_header_file_is_refused_at_save(self):
        self.assert_refused("The template's header is an image: upload the header file on "
                            "the mapping", self.use, self.tpl_image)
        self.assert_refused(r"Header file: guia\.pdf is not an image file",
                            self.use, self.tpl_image, PDF, "guia.pdf")
        self.env.invalidate_all()
        self.assertEqual(self.map_confirmation.template_id.name, "appointment_confirmation")

    def test_url_variable_from_a_fixed_text_is_encoded_or_refused(self):
        mapping = self.use(self.tpl_image, PNG, "consulta.png")
        line = mapping.param_ids.filtered(lambda li: li.component == "button")
        line.write({"source": "fixed_text", "fixed_value": "retorno São Paulo"})
        self.send(self.event, "confirmation", self.maria)
        self.assertEqual(self.sent_components()[-1]["parameters"],
                         [{"type": "text", "text": "retorno%20S%C3%A3o%20Paulo"}])
        room = 2000 - len("https://clinica.example/c/")
        self.assert_refused("URL button 1: the link's variable is %d characters long"
                            % (room + 1), line.write, {"fixed_value": "x" * (room + 1)})

    def test_header_upload_refused_by_meta_fails_the_message_and_sends_nothing(self):
        self.use(self.tpl_image, PNG, "consulta.png")
        self.fake.add_fault(match={"path": "/media"}, status=400, code=131053)
        result = self.send(self.event, "confirmation", self.maria)
        self.assertTrue(result.startswith("failed: "), result)
        message = self.message_of(self.event, "confirmation", self.maria)
        self.assertEqual(message.status, "failed")
        self.assertIn("Meta refused the template's header file", message.error_details)
        self.assertFalse(self.graph_requests(path_contains="/messages"))

    def test_temporary_upload_refusal_is_retried_then_sent_once(self):
        self.use(self.tpl_image, PNG, "consulta.png")
        self.fake.add_fault(match={"path": "/media"}, status=503, code=131016)
        error = self.send_postponed(self.event, "confirmation", self.maria)
        self.assertIsInstance(error, RetryableJobError)
        self.assertFalse(self.graph_requests(path_contains="/messages"))
        self.assertFalse(self.message_of(self.event, "confirmation", self.maria))
        self.assertTrue(self.send(self.event, "confirmation", self.maria).startswith("sent"))
        self.assertEqual(len(self.graph_requests(path_contains="/messages")), 1)
        self.assertEqual(self.message_of(self.event, "confirmation", self.maria).wa_send_key,
                         "wac:%d:confirmation:%d:%s" % (self.event.id, self.maria.id,
                                                        start_key(FUTURE_START)))

    def test_a_file_for_one_send_replaces_the_mappings(self):
        mapping = self.use(self.tpl_document, PDF, "preparo.pdf")
        other = PDF + b"outro"
        attachment = self.env["ir.attachment"].create({
            "name": "preparo-maria.pdf", "mimetype": "application/pdf",
            "datas": base64.b64encode(other)})
        media = mapping._wac_header_media(self.account_a, attachment=attachment)
        self.assertEqual(self.fake.upload(media["id"])["content"], other)
        self.assertEqual(media["filename"], "preparo-maria.pdf")
        self.assertIsNone(self.map_reminder._wac_header_media(self.account_a),
                          "a template without a media header needs no file")
