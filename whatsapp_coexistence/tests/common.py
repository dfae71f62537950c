"""Shared fixtures of the Odoo suite: two tenants against a real fake Graph server.

Nothing is mocked: the Graph client talks HTTP to ``tools/fake_graph`` on 127.0.0.1, and
webhooks go through Odoo's HTTP server with real HMAC headers.
"""

import hashlib
import hmac
import json
from contextlib import contextmanager

from odoo.tests import HttpCase, TransactionCase, new_test_user

from odoo.addons.queue_job.tests.common import trap_jobs

from ..const import (
    PARAM_APP_ID,
    PARAM_APP_SECRET,
    PARAM_ES_CONFIG_ID,
    PARAM_GRAPH_BASE_URL,
    PARAM_KILL_SWITCH,
    PARAM_VERIFY_TOKEN,
    WEBHOOK_ROUTE,
)
from ..models.wac_webhook_delivery import DISPATCH_IDENTITY_KEY
from ..tools.fake_graph import FakeGraphServer

# Identifiers of tools/fake_graph/seed_demo.json.
CLINIC = {"waba_id": "102290129340398", "phone_number_id": "106540352242922",
          "display_phone_number": "+55 11 98765-4321",
          "token": "EAAGfakeclinic0000000000000000000001"}
SALON = {"waba_id": "202290129340398", "phone_number_id": "206540352242922",
         "display_phone_number": "+55 21 99876-5432",
         "token": "EAAGfakesalon000000000000000000000002"}
VERIFY_TOKEN = "verify-token-for-tests"


class WacCaseMixin:
    """Two companies (A: clinic, B: salon), each with its account, manager and user."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._wac_setup()

    def setUp(self):
        super().setUp()
        self.fake.reset()
        self.fake.clear_requests()

    @classmethod
    def _wac_setup(cls):
        cls.fake = FakeGraphServer(port=0, status_delay=0)
        cls.fake.start()
        cls.addClassCleanup(cls.fake.stop)
        env = cls.env
        # Demo data may hold the seeded numbers: the tests own them.
        env["wac.account"].sudo().search([]).unlink()
        params = env["ir.config_parameter"].sudo()
        params.set_param(PARAM_GRAPH_BASE_URL, cls.fake.url)
        params.set_param(PARAM_APP_ID, cls.fake.app_id)
        params.set_param(PARAM_APP_SECRET, env["wac.vault"]._encrypt(cls.fake.app_secret))
        params.set_param(PARAM_ES_CONFIG_ID, "es-config-for-tests")
        params.set_param(PARAM_VERIFY_TOKEN, VERIFY_TOKEN)
        params.set_param(PARAM_KILL_SWITCH, False)
        brazil = env.ref("base.br")
        cls.company_a = env["res.company"].create({
            "name": "Clínica A", "country_id": brazil.id, "email": "clinica@example.com"})
        cls.company_b = env["res.company"].create({
            "name": "Salão B", "country_id": brazil.id, "email": "salao@example.com"})
        cls.account_a = cls._wac_account(cls.company_a, CLINIC)
        cls.account_b = cls._wac_account(cls.company_b, SALON)
        manager = "base.group_user,whatsapp_coexistence.whatsapp_coexistence_group_manager"
        user = "base.group_user,whatsapp_coexistence.whatsapp_coexistence_group_user"
        cls.manager_a = new_test_user(env, "wac_manager_a", groups=manager,
                                      company_id=cls.company_a.id, company_ids=cls.company_a.ids)
        cls.manager_b = new_test_user(env, "wac_manager_b", groups=manager,
                                      company_id=cls.company_b.id, company_ids=cls.company_b.ids)
        cls.user_a = new_test_user(env, "wac_user_a", groups=user,
                                   company_id=cls.company_a.id, company_ids=cls.company_a.ids)

    @classmethod
    def _wac_account(cls, company, ids):
        account = cls.env["wac.account"].create({
            "company_id": company.id, "waba_id": ids["waba_id"],
            "phone_number_id": ids["phone_number_id"],
            "display_phone_number": ids["display_phone_number"],
        })
        account._wac_set_token(ids["token"])
        account.write({"state": "connected"})
        return account

    @staticmethod
    def go_live(account, **vals):
        """Switch ``account`` to ``enabled`` through the administrator's override: fixtures
        are not ready (test_readiness covers the gate itself)."""
        if vals:
            account.write(vals)
        account._wac_force_golive("Test fixture: the readiness gate is tested on its own.")

    # ------------------------------------------------------------
    # Graph traffic
    # ------------------------------------------------------------

    def graph_requests(self, path_contains=None, method=None):
        """The requests the fake Graph server received (Authorization masked)."""
        return self.fake.requests(path_contains=path_contains, method=method)

    def assert_graph_called(self, method, path_contains, count=1):
        calls = self.graph_requests(path_contains=path_contains, method=method)
        self.assertEqual(len(calls), count, "%s %s called %d time(s): %s" % (
            method, path_contains, len(calls), [c["path"] for c in self.graph_requests()]))
        return calls


class WacTransactionCase(WacCaseMixin, TransactionCase):
    """Model-level tests: the Graph client still talks HTTP to the fake server."""


class WacHttpCase(WacCaseMixin, HttpCase):
    """Webhooks through Odoo's real HTTP server, signed like Meta signs them."""

    @staticmethod
    def dumps(payload):
        """Serialise like Meta: compact JSON with escaped unicode (reference §1.1)."""
        return json.dumps(payload, ensure_ascii=True).encode()

    def sign(self, body, secret=None):
        secret = self.fake.app_secret if secret is None else secret
        return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    def post_webhook(self, payload=None, body=None, signature="sign", headers=None):
        """POST a webhook; ``signature="sign"`` signs the body with the App Secret."""
        body = self.dumps(payload) if body is None else body
        headers = dict(headers or {}, **{"Content-Type": "application/json"})
        if signature == "sign":
            signature = self.sign(body)
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return self.url_open(WEBHOOK_ROUTE, data=body, headers=headers, timeout=20)

    def deliver_signed(self, *payloads):
        """POST each payload signed (each must get its 200), then run the jobs they enqueued."""
        with self.processing():
            for payload in payloads:
                self.assertEqual(self.post_webhook(payload).status_code, 200)

    @contextmanager
    def processing(self):
        """Trap the jobs enqueued by webhook requests, then run them like the job runner."""
        with trap_jobs() as trap:
            yield trap
            self.run_jobs(trap)

    def run_jobs(self, trap):
        """Perform the trapped jobs (and the jobs they enqueue) in the test transaction.

        Jobs enqueued by a request hold the request's environment, whose cursor is closed once
        the response is sent: rebind them to the test cursor, as the job runner would bind
        them to its own.
        """
        while True:
            self.run_waiting_dispatcher()
            if not trap.enqueued_jobs:
                break
            for job in trap.enqueued_jobs:
                old = job.recordset.env
                job.recordset = job.recordset.with_env(
                    self.env(user=old.uid, su=old.su, context=old.context))
            trap.perform_enqueued_jobs()
        self.env.invalidate_all()

    def run_waiting_dispatcher(self):
        """trap_jobs stores a job for real when a job of the same identity key is already
        trapped (two webhooks in one block): run that waiting dispatcher before the other
        jobs, as the runner would (its priority goes first), or later webhooks would count on
        it and stay unprocessed, and media downloads would yield to it."""
        waiting = self.env["queue.job"].sudo().search([
            ("identity_key", "=", DISPATCH_IDENTITY_KEY),
            ("state", "in", ("pending", "enqueued"))])
        if waiting:
            waiting.unlink()
            self.env["wac.webhook.delivery"].sudo()._wac_dispatch()
