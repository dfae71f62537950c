"""Fixtures of the appointment automation tests: approved templates, mappings, customers.

The send pipeline writes its message rows and rate-limit slots in transactions of its own
(``registry.cursor()``). The registry is put in test mode so that those cursors work on the
test transaction (as savepoints) and see the test's companies; the rate-limiter race test
(``test_rate_limit``) opens real connections instead.
"""

import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from unittest.mock import patch

from odoo import fields

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job
from odoo.addons.queue_job.tests.common import trap_jobs

from ..tools.fake_graph.wire import GraphError
from ..tools.wa_cloud import template_library, webhook
from ..tools.wa_cloud.client import GraphClient
from ..tools.wa_cloud.send_key import parse_send_key, start_key
from .common import CLINIC, SALON, WacTransactionCase

# A Tuesday; 17:30 UTC is 14:30 in São Paulo (no daylight saving time since 2019).
FUTURE_START = datetime(2027, 2, 2, 17, 30)
MARIA = "+55 11 99123-4567"  # the fake answers wa_id 551191234567 (legacy 8-digit form)
JOAO = "+55 11 98765-1234"
ANA = "+55 21 99876-1111"


def near_start(hours=25):
    """A start ``hours`` from now, to the minute: its 24-hour reminder is due within the
    planner's look-ahead, so it is enqueued with the appointment."""
    return fields.Datetime.now().replace(second=0, microsecond=0) + timedelta(hours=hours)


class WacAutomationMixin:
    @classmethod
    def _wac_automation_setup(cls):
        env = cls.env
        if not cls.registry.in_test_mode():
            cls.registry.enter_test_mode(cls.cr)
            cls.addClassCleanup(cls.registry.leave_test_mode)
        env["res.lang"]._activate_lang("pt_BR")
        for company in (cls.company_a, cls.company_b):
            company.partner_id.write({"tz": "America/Sao_Paulo", "lang": "pt_BR",
                                      "street": "Rua das Flores, 123", "city": "São Paulo"})
        for account in (cls.account_a, cls.account_b):
            # Quiet hours and pair spacing are tested on their own; elsewhere they would make
            # the outcome depend on the hour the suite runs at.
            cls.go_live(account, quiet_hours_start=0, quiet_hours_end=0,
                        recipient_spacing_s=0)
        for account in (cls.account_a, cls.account_b):
            account.action_sync_templates()
        cls.fake.reset()
        cls.tpl_confirmation = cls._template(cls.account_a, "appointment_confirmation", "pt_BR")
        cls.tpl_reminder = cls._template(cls.account_a, "appointment_reminder", "pt_BR")
        Mapping = env["wac.template.mapping"]
        cls.map_confirmation = Mapping.create({
            "company_id": cls.company_a.id, "message_type": "confirmation",
            "template_id": cls.tpl_confirmation.id})
        cls.map_reminder = Mapping.create({
            "company_id": cls.company_a.id, "message_type": "reminder",
            "template_id": cls.tpl_reminder.id})
        # The library templates, approved by Meta: mapped by themselves where nothing is.
        for account in (cls.account_a, cls.account_b):
            cls._approve_library_in_fake(account)
            account.action_sync_templates()
        cls.fake.reset()
        cls.map_confirmation_b = Mapping.search([("company_id", "=", cls.company_b.id),
                                                 ("message_type", "=", "confirmation"),
                                                 ("language", "=", "pt_BR")])
        cls.organizer_a = cls.env["res.users"].create({
            "name": "Dra. Paula", "login": "wac_paula", "company_id": cls.company_a.id,
            "company_ids": [(6, 0, cls.company_a.ids)], "tz": "America/Sao_Paulo",
            "groups_id": [(6, 0, [env.ref("base.group_user").id])]})
        Partner = env["res.partner"]
        cls.maria = Partner.create({"name": "Maria Silva", "mobile": MARIA, "lang": "pt_BR"})
        cls.joao = Partner.create({"name": "João Pereira", "mobile": JOAO, "lang": "pt_BR"})
        cls.mary = Partner.create({"name": "Mary Smith", "mobile": ANA, "lang": "en_US"})
        cls.no_phone = Partner.create({"name": "Sem Telefone"})

    @classmethod
    def _template(cls, account, name, language):
        return cls.env["wac.template"].search([("account_id", "=", account.id),
                                               ("name", "=", name),
                                               ("language", "=", language)])

    @classmethod
    def _approve_library_in_fake(cls, account):
        """Put the library templates in the fake WABA, approved (the fake resets to its seed
        before every test)."""
        state = cls.fake.state
        waba = state.wabas[account.waba_id]
        for kind, lang in template_library.entries():
            payload = template_library.creation_payload(kind, lang)
            try:
                created = state.create_template(waba, payload)
            except GraphError:  # already in the WABA
                continue
            state.set_template_status(created["id"], "APPROVED")

    def setUp(self):
        super().setUp()
        self._approve_library_in_fake(self.account_a)
        self._approve_library_in_fake(self.account_b)

    # ------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------

    def make_event(self, partners, start=FUTURE_START, company=None, user=None, **vals):
        """Create an appointment of company A (default) with ``partners`` as customers."""
        company = company or self.company_a
        user = user or self.organizer_a
        return self.env["calendar.event"].with_company(company).create(dict({
            "name": "Limpeza", "start": start, "stop": start + timedelta(minutes=45),
            "user_id": user.id, "location": "Sala 3\nRua das Flores, 123",
            "partner_ids": [(6, 0, [user.partner_id.id, *partners.ids])],
            "wa_company_id": company.id,
        }, **vals))

    def plan_reminders(self, as_of):
        """Run the hourly reminder planner as of ``as_of``; return the trap."""
        with self.clock(as_of):
            trap, _count = self.enqueue(self.env["wac.send"]._wac_cron_plan_reminders)
        return trap

    def clock(self, now):
        """Run the planner and the send job as of ``now``: their one clock is patched."""
        return patch.object(self.registry["wac.send"], "_wac_now", lambda _self: now)

    def enqueue(self, func, *args, **kwargs):
        """Run ``func`` and return the jobs it enqueued (trapped, not run)."""
        with trap_jobs() as trap:
            result = func(*args, **kwargs)
        return trap, result

    def job_calls(self, trap):
        """The trapped send jobs as ``{(event, kind, partner, start): properties}``."""
        calls = {}
        for call in trap.calls:
            if call.method.__name__ != "_wac_job_send":
                continue
            _company, event_id, kind, partner_id, start, *_rest = call.args
            calls[(event_id, kind, partner_id, start)] = call.properties
        return calls

    def send(self, event, kind, partner, start=None, snapshot=None, company=None):
        """Run one send job directly, as the job runner would."""
        return self.env["wac.send"]._wac_job_send(
            (company or event.wa_company_id).id, event.id, kind, partner.id,
            start or start_key(event.start), snapshot)

    def send_postponed(self, *args, **kwargs):
        """Run a send job that must be postponed and return its ``RetryableJobError``.

        Not ``assertRaises``: Odoo's rolls back a savepoint, which would also undo what the
        job committed in its own short transactions (the job runner only rolls back the job's
        transaction).
        """
        try:
            result = self.send(*args, **kwargs)
        except RetryableJobError as error:
            return error
        self.fail("the job was not postponed: %s" % result)

    def sent_messages(self, phone_number_id=CLINIC["phone_number_id"]):
        return self.fake.messages(phone_number_id)

    def message_of(self, event, kind, partner):
        return self.env["wac.message"].search([
            ("res_model", "=", "calendar.event"), ("res_id", "=", event.id),
            ("wa_kind", "=", kind), ("wa_partner_id", "=", partner.id)])

    def deliver_statuses(self, account, wamid, *statuses):
        """Meta's status webhooks for ``wamid`` (shapes from the fake), ingested by Odoo."""
        for status in statuses:
            _waba, payload = self.fake.state.status_webhook(wamid, status)
            value = payload["entry"][0]["changes"][0]["value"]
            self.env["wac.message"]._wac_ingest_statuses(account, webhook.statuses(value))

    def inbound(self, account, sender, text=None, button=None, context_id=None):
        """A customer's message (Meta's shape, from the fake), ingested by Odoo."""
        phone_id = CLINIC["phone_number_id"] if account == self.account_a \
            else SALON["phone_number_id"]
        _waba, _wamid, payload = self.fake.state.inbound_webhook(
            phone_id, sender, text, None, button, context_id)
        value = payload["entry"][0]["changes"][0]["value"]
        return self.env["wac.message"]._wac_ingest_inbound(
            account, webhook.inbound_messages(value))

    def chatter(self, event):
        return "\n".join(event.message_ids.mapped(lambda m: m.body or ""))

    def age_attempt(self, message, seconds):
        message.write({"wa_attempt_at": fields.Datetime.now() - timedelta(seconds=seconds)})

    # ------------------------------------------------------------
    # The job runner and Meta's timing
    # ------------------------------------------------------------

    def send_jobs(self, event, states=("pending",)):
        """The stored send jobs of ``event`` in ``states``, oldest first."""
        return self.env["queue.job"].search([
            ("method_name", "=", "_wac_job_send"), ("state", "in", states),
            ("identity_key", "=like", "wac:%d:%%" % event.id)], order="id")

    def run_job(self, record):
        """Run one stored job as queue_job's runner does: *started* is stored before the job
        runs, then the job ends *done*, or *pending* again when it asks to be postponed.

        :returns: the job's result, or the ``RetryableJobError`` it raised
        """
        job = Job.load(self.env, record.uuid)
        job.set_started()
        job.store()
        try:
            result = job.perform()
        except RetryableJobError as error:
            job.postpone(result=str(error), seconds=error.seconds)
            job.set_pending(reset_retry=False)
            job.store()
            return error
        job.set_done()
        job.store()
        return result

    def drain(self, event, rounds=4):
        """Run the send jobs of ``event`` like free workers, ``rounds`` times: each round
        runs every waiting job once, whatever its ``eta`` (a round stands for the seconds a
        postponed job asked for)."""
        results = []
        for _round in range(rounds):
            jobs = self.send_jobs(event)
            if not jobs:
                break
            results += [self.run_job(job) for job in jobs]
        return results

    @contextmanager
    def while_meta_holds_the_send(self, meanwhile):
        """Meta takes its time with the next message send: ``meanwhile`` runs while that
        request is at the fake Graph server (a ``latency`` fault holds it there).

        Only the client's request seam is patched: the request itself goes to the fake over
        HTTP, from a thread, and the test thread waits until the fake took the request's
        fault (the request is in flight) before it runs ``meanwhile``, as another user and
        another worker would.
        """
        original = GraphClient._send
        todo = [meanwhile]

        def send(client, method, url, **kwargs):
            if not todo or not url.endswith("/messages"):
                return original(client, method, url, **kwargs)
            action, outcome = todo.pop(), {}

            def call():
                try:
                    outcome["value"] = original(client, method, url, **kwargs)
                except Exception as error:  # raised in the test thread below
                    outcome["error"] = error

            faults = len(self.fake.faults())
            thread = threading.Thread(target=call)
            thread.start()
            deadline = time.monotonic() + 10
            while len(self.fake.faults()) == faults and time.monotonic() < deadline:
                time.sleep(0.01)
            try:
                action()
            finally:
                thread.join(30)
            if "error" in outcome:
                raise outcome["error"]
            return outcome["value"]

        with patch.object(GraphClient, "_send", send):
            yield
        self.assertFalse(todo, "no message was sent while Meta was expected to hold it")

    def accepted(self, partner):
        """What the fake Graph server accepted for ``partner``: ``[(kind, start key)]`` in
        the order Meta accepted them, read from the send keys Meta echoes."""
        keys = [parse_send_key(m["biz_opaque_callback_data"]) for m in self.fake.messages()]
        return [(key.kind, key.start) for key in keys if key and key.partner_id == partner.id]

    def assert_settled(self, event):
        """Every message of ``event`` has a final state, and no send job is left."""
        self.env.invalidate_all()
        open_rows = self.env["wac.message"].search([
            ("res_model", "=", "calendar.event"), ("res_id", "=", event.id),
            "|", ("status", "=", "pending"), ("wa_attempt_open", "=", True)])
        self.assertFalse(open_rows, "left unsettled: %s" % open_rows.mapped("wa_send_key"))
        self.assertFalse(self.send_jobs(event, ("pending", "enqueued", "started")))


class WacAutomationCase(WacAutomationMixin, WacTransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._wac_automation_setup()
