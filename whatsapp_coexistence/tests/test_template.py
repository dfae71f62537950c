"""Templates per company: sync (paginated), library creation, mappings, validation, isolation."""

import json

from psycopg2 import IntegrityError

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..tools.wa_cloud import template_library
from ..tools.wa_cloud import webhook as wa_webhook
from .common import CLINIC, WacTransactionCase
from .common_automation import WacAutomationCase


@tagged("post_install", "-at_install")
class TestTemplateSync(WacTransactionCase):
    def test_sync_reads_components_and_parameters(self):
        action = self.account_a.action_sync_templates()
        self.assertEqual(action["params"]["type"], "success")
        templates = self.env["wac.template"].search([("account_id", "=", self.account_a.id)])
        self.assertEqual(set(templates.mapped("name")),
                         {"hello_world", "appointment_confirmation", "appointment_reminder"})
        confirmation = templates.filtered(lambda t: t.name == "appointment_confirmation")
        self.assertRecordValues(confirmation, [{
            "language": "pt_BR", "status": "APPROVED", "category": "UTILITY",
            "parameter_format": "POSITIONAL", "param_names": "body:1, body:2, body:3",
            "param_count": 3, "buttons_text": "Confirmar | Cancelar",
            "meta_template_id": "1029384756102932", "company_id": self.company_a.id,
        }])
        reminder = templates.filtered(lambda t: t.name == "appointment_reminder")
        self.assertEqual(reminder.param_names, "body:customer_name, body:appointment_time")
        self.assertEqual(json.loads(reminder.components)[0]["type"], "BODY")
        self.assertFalse(self.env["wac.template"].search([("account_id", "=", self.account_b.id)]),
                         "one company's sync never touches another's templates")

    def test_sync_follows_pagination(self):
        waba = self.fake.state.wabas[CLINIC["waba_id"]]
        for index in range(120):
            created = self.fake.state.create_template(waba, {
                "name": "bulk_%03d" % index, "language": "pt_BR", "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Mensagem {{1}} de teste"}]})
            self.fake.state.set_template_status(created["id"], "APPROVED")
        self.account_a.action_sync_templates()
        pages = self.graph_requests(path_contains="/message_templates", method="GET")
        self.assertEqual(len(pages), 2)
        self.assertEqual(pages[1]["query"].get("after") is not None, True)
        self.assertEqual(self.env["wac.template"].search_count(
            [("account_id", "=", self.account_a.id)]), 123)

    def test_sync_is_idempotent_and_marks_gone_templates_deleted(self):
        self.account_a.action_sync_templates()
        hello = self.env["wac.template"].search([("account_id", "=", self.account_a.id),
                                                 ("name", "=", "hello_world")])
        write_date = hello.write_date
        created, updated, deleted = self.env["wac.template"]._wac_sync_account(self.account_a)
        self.assertEqual((created, updated, deleted), (0, 0, 0))
        self.assertEqual(hello.write_date, write_date)
        self.fake.state.delete_template(self.fake.state.wabas[CLINIC["waba_id"]], "hello_world")
        self.env["wac.template"]._wac_sync_account(self.account_a)
        self.assertTrue(hello.exists(), "never unlinked")
        self.assertEqual(hello.status, "DELETED")

    def test_sync_error_is_reported(self):
        self.fake.add_fault(code=190, match={"path": "/message_templates"})
        action = self.account_a.action_sync_templates()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("new System User token", action["params"]["message"])

    def test_daily_cron_syncs_every_connected_account(self):
        self.fake.add_fault(code=131016, match={"path": CLINIC["waba_id"]})
        with mute_logger("odoo.addons.whatsapp_coexistence.models.wac_template"):
            self.env["wac.template"]._wac_cron_sync_templates()
        self.assertFalse(self.account_a.template_ids)
        self.assertIn("131016", self.account_a.last_error)
        self.assertTrue(self.account_b.template_ids, "the other company is synced anyway")
        self.assertTrue(self.account_b.templates_synced_on)
        cron = self.env.ref("whatsapp_coexistence.ir_cron_wac_template_sync")
        self.assertEqual((cron.interval_number, cron.interval_type), (1, "days"))

    def test_status_webhook_still_updates_templates(self):
        self.account_a.action_sync_templates()
        state = self.fake.state
        _waba, tpl = state.set_template_status("1029384756102933", "PAUSED")
        payload = state.template_status_webhook(CLINIC["waba_id"], tpl)
        change = payload["entry"][0]["changes"][0]
        (event,) = wa_webhook.template_event(change["field"], change["value"])
        result = self.env["wac.template"]._wac_apply_event(self.account_a, event)
        self.assertEqual(result, "appointment_reminder pt_BR: PAUSED")
        reminder = self.account_a.template_ids.filtered(lambda t: t.name == "appointment_reminder")
        self.assertEqual(reminder.status, "PAUSED")
        self.assertEqual(reminder.param_count, 2, "the content from the sync is kept")


@tagged("post_install", "-at_install")
class TestTemplateLibrary(WacTransactionCase):
    def test_create_library_submits_eight_utility_templates_once(self):
        action = self.account_a.action_create_appointment_templates()
        self.assertEqual(action["params"]["type"], "success")
        posts = self.graph_requests(path_contains="/message_templates", method="POST")
        self.assertEqual(len(posts), 8)
        bodies = {(p["json"]["name"], p["json"]["language"]): p["json"] for p in posts}
        self.assertEqual(set(bodies), {(template_library.template_name(kind), lang)
                                       for kind, lang in template_library.entries()})
        reminder = bodies[("odoo_appointment_reminder", "pt_BR")]
        self.assertEqual((reminder["category"], reminder["parameter_format"]),
                         ("UTILITY", "NAMED"))
        self.assertIn("Passando para lembrar", reminder["components"][0]["text"])
        library = self.account_a.template_ids.filtered("library_type")
        self.assertEqual(len(library), 8)
        self.assertEqual(set(library.mapped("status")), {"PENDING"})
        self.assertIn("submitted for approval", self.account_a.message_ids[0].body)
        # Again: nothing is submitted twice.
        self.fake.clear_requests()
        self.account_a.action_create_appointment_templates()
        self.assertEqual(self.graph_requests(path_contains="/message_templates",
                                             method="POST"), [])

    def test_library_errors_are_shown_per_template(self):
        self.fake.add_fault(code=100, details="Invalid parameter", times=1,
                            match={"path": "/message_templates", "method": "POST"})
        action = self.account_a.action_create_appointment_templates()
        self.assertEqual(action["params"]["type"], "warning")
        lines = action["params"]["message"].splitlines()
        self.assertEqual(len(lines), 8)
        self.assertEqual(sum("refused" in line for line in lines), 1)
        self.assertEqual(sum("submitted" in line for line in lines), 7)
        self.fake.clear_requests()
        self.account_a.action_create_appointment_templates()
        self.assertEqual(len(self.graph_requests(path_contains="/message_templates",
                                                 method="POST")), 1, "only the refused one")

    def test_approval_maps_the_library_templates(self):
        self.account_a.action_create_appointment_templates()
        self.fake.wait_webhooks(2)
        for tpl in self.account_a.template_ids.filtered("library_type"):
            self.fake.state.set_template_status(tpl.meta_template_id, "APPROVED")
        self.account_a.action_sync_templates()
        mappings = self.env["wac.template.mapping"].search([
            ("company_id", "=", self.company_a.id)])
        self.assertEqual(len(mappings), 8)
        reminder = mappings.filtered(lambda m: m.message_type == "reminder"
                                     and m.language == "pt_BR")
        self.assertEqual({line.name: line.source for line in reminder.param_ids}, {
            "customer_name": "attendee_first_name", "company_name": "company_name",
            "appointment_date": "appointment_date", "appointment_time": "appointment_time",
            "location": "location"})


@tagged("post_install", "-at_install")
class TestTemplateMapping(WacAutomationCase):
    def test_lines_are_guessed_from_the_template(self):
        self.assertEqual([(li.key, li.source) for li in self.map_confirmation.param_ids], [
            ("body:1", "attendee_first_name"), ("body:2", "appointment_date"),
            ("body:3", "appointment_time")])
        self.assertEqual([(li.key, li.source) for li in self.map_reminder.param_ids], [
            ("body:customer_name", "attendee_name"), ("body:appointment_time",
                                                      "appointment_time")])

    def test_parameter_count_and_names_must_match(self):
        with self.assertRaisesRegex(ValidationError, "missing: body:3"):
            self.map_confirmation.param_ids[-1].unlink()
            self.map_confirmation.flush_recordset()
            self.map_confirmation._check_params()
        with self.assertRaisesRegex(ValidationError, "not in the template: body:customer"):
            self.map_confirmation.write({"param_ids": [(0, 0, {
                "component": "body", "name": "customer", "source": "attendee_name"})]})
        with self.assertRaisesRegex(ValidationError, "fixed text needs a value"):
            self.map_confirmation.param_ids[0].source = "fixed_text"

    def test_check_shows_the_message_as_sent(self):
        action = self.map_confirmation.action_check()
        self.assertEqual(action["params"]["type"], "success")
        self.assertIn("Olá Maria, sua consulta em", self.map_confirmation.check_result)
        self.assertIn("14:30", self.map_confirmation.check_result)
        self.tpl_confirmation.status = "PAUSED"
        action = self.map_confirmation.action_check()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("only approved templates", self.map_confirmation.check_result)

    def test_hello_world_needs_dry_run_or_allowlist(self):
        hello = self._template(self.account_a, "hello_world", "en_US")
        self.env["wac.template.mapping"].search([
            ("company_id", "=", self.company_a.id), ("message_type", "=", "reminder")]).unlink()
        with self.assertRaisesRegex(ValidationError, "hello_world"):
            self.env["wac.template.mapping"].create({
                "company_id": self.company_a.id, "message_type": "reminder",
                "template_id": hello.id})
        self.account_a.automation_mode = "dry_run"
        self.env["wac.template.mapping"].create({
            "company_id": self.company_a.id, "message_type": "reminder",
            "template_id": hello.id})
        with self.assertRaisesRegex(ValidationError, "hello_world"):
            self.go_live(self.account_a)
        self.go_live(self.account_a, pilot_allowlist="+55 11 99123-4567")

    def test_one_mapping_per_type_and_language(self):
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), \
                self.cr.savepoint():
            self.env["wac.template.mapping"].create({
                "company_id": self.company_a.id, "message_type": "confirmation",
                "template_id": self.tpl_confirmation.id})
            self.env.flush_all()

    def test_mapping_is_chosen_by_the_attendee_language(self):
        Mapping = self.env["wac.template.mapping"]
        self.assertEqual(Mapping._wac_for(self.company_a, "confirmation", "pt_BR"),
                         self.map_confirmation)
        english = Mapping._wac_for(self.company_a, "confirmation", "en_US")
        self.assertEqual(english.template_id.name, "odoo_appointment_confirmation")
        self.assertEqual(english.language, "en_US")
        self.assertEqual(Mapping._wac_for(self.company_a, "confirmation", "pt_PT"),
                         self.map_confirmation, "same language family")
        self.assertEqual(Mapping._wac_for(self.company_a, "confirmation", "fr_FR"),
                         self.map_confirmation, "else the company's language")

    def test_rendering_in_portuguese_and_company_time_zone(self):
        values = self.env["wac.template.mapping"]._wac_render_values({
            "start": "2026-02-03 17:30:00", "location": "Rua A\n\tSala 2",
            "organizer": "Dra. Paula", "name": "Limpeza"}, self.maria, self.company_a, "pt_BR")
        self.assertEqual(values["appointment_date"], "terça-feira, 3 de fevereiro de 2026")
        self.assertEqual(values["appointment_time"], "14:30")
        self.assertEqual(values["appointment_weekday"], "terça-feira")
        self.assertEqual(values["attendee_first_name"], "Maria")
        self.assertEqual(values["company_name"], "Clínica A")
        english = self.env["wac.template.mapping"]._wac_render_values(
            {"start": "2026-02-03 17:30:00"}, self.maria, self.company_a, "en_US")
        self.assertEqual(english["appointment_date"], "Tuesday, February 3, 2026")
        # Without a location, the company's address.
        self.assertIn("Rua das Flores, 123", english["location"])

    def test_all_day_appointment(self):
        values = self.env["wac.template.mapping"]._wac_render_values({
            "start": "2026-02-03 08:00:00", "allday": True, "start_date": "2026-02-03"},
            self.maria, self.company_a, "en_US")
        self.assertEqual((values["appointment_date"], values["appointment_time"]),
                         ("Tuesday, February 3, 2026", "all day"))


@tagged("post_install", "-at_install")
class TestTemplateIsolation(WacAutomationCase):
    def test_manager_of_a_sees_nothing_of_b(self):
        Template = self.env["wac.template"].with_user(self.manager_a)
        Mapping = self.env["wac.template.mapping"].with_user(self.manager_a)
        names = Template.search([]).mapped("company_id")
        self.assertEqual(names, self.company_a)
        self.assertEqual(Mapping.search([]).mapped("company_id"), self.company_a)
        self.assertEqual(self.env["wac.template.mapping.param"].with_user(self.manager_a)
                         .search([]).mapped("company_id"), self.company_a)
        with self.assertRaises(AccessError):
            self.map_confirmation_b.with_user(self.manager_a).read(["template_id"])
        with self.assertRaises(AccessError):
            self.map_confirmation_b.with_user(self.manager_a).write({"sequence": 3})
        with self.assertRaises(AccessError):
            self.map_confirmation_b.param_ids[:1].with_user(self.manager_a).write(
                {"source": "organizer"})
        template_b = self.map_confirmation_b.template_id
        with self.assertRaises(AccessError):
            template_b.with_user(self.manager_a).read(["body_text"])

    def test_manager_cannot_map_another_company_template(self):
        template_b = self.map_confirmation_b.template_id
        self.env["wac.template.mapping"].search([
            ("company_id", "=", self.company_a.id), ("message_type", "=", "cancellation")]).unlink()
        with self.assertRaises(AccessError), self.cr.savepoint():
            self.env["wac.template.mapping"].with_user(self.manager_a).create({
                "company_id": self.company_a.id, "message_type": "cancellation",
                "template_id": template_b.id})

    def test_user_reads_but_cannot_change_mappings(self):
        mapping = self.map_confirmation.with_user(self.user_a)
        self.assertTrue(mapping.template_id)
        with self.assertRaises(AccessError):
            mapping.write({"sequence": 2})
