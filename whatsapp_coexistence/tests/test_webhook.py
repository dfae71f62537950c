import json

from cryptography.fernet import Fernet

from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.queue_job.tests.common import trap_jobs

from ..const import PARAM_APP_SECRET, PARAM_VERIFY_TOKEN, WEBHOOK_ROUTE
from ..models import wac_webhook_delivery
from ..models.wac_webhook_delivery import DISPATCH_IDENTITY_KEY
from . import payloads as P
from .common import SALON, VERIFY_TOKEN, WacHttpCase

CLINIC_PHONE = P.PHONE_NUMBER_ID  # Meta's example ids are the clinic's in the fake seed
QUIET = "odoo.addons.whatsapp_coexistence.models.wac_webhook_delivery"


@tagged("post_install", "-at_install")
class TestWebhookTransport(WacHttpCase):
    """Verification handshake, signature, size and JSON checks, dedupe: the HTTP contract."""

    def test_get_verification(self):
        url = "%s?hub.mode=subscribe&hub.verify_token=%s&hub.challenge=1158201444"
        response = self.url_open(url % (WEBHOOK_ROUTE, VERIFY_TOKEN))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.text, "1158201444")
        self.assertTrue(response.headers["Content-Type"].startswith("text/plain"))
        with mute_logger("odoo.addons.whatsapp_coexistence.controllers.webhook"):
            for query in ("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
                          "hub.mode=unsubscribe&hub.verify_token=%s&hub.challenge=1" % VERIFY_TOKEN,
                          "hub.challenge=1"):
                response = self.url_open("%s?%s" % (WEBHOOK_ROUTE, query))
                self.assertEqual(response.status_code, 403, query)
            self.env["ir.config_parameter"].sudo().set_param(PARAM_VERIFY_TOKEN, "")
            response = self.url_open(url % (WEBHOOK_ROUTE, ""))
            self.assertEqual(response.status_code, 403, "an empty token never matches")

    def test_signed_delivery_is_stored_then_processed(self):
        with self.processing() as trap:
            response = self.post_webhook(P.inbound_text())
            self.assertEqual(response.status_code, 200)
            delivery = self.env["wac.webhook.delivery"].search([], limit=1)
            self.assertEqual(delivery.state, "received", "nothing is processed in the request")
            trap.assert_jobs_count(1)
        self.assertEqual(delivery.state, "done")
        self.assertEqual(delivery.body, self.dumps(P.inbound_text()).decode())
        self.assertEqual(delivery.event_ids.company_id, self.company_a)
        self.assertEqual(self.env["wac.message"].search([("wamid", "=", P.TEXT_WAMID)]).body,
                         "Does it come in another color?")

    def test_refused_deliveries_are_counted_without_body(self):
        Rejection = self.env["wac.webhook.rejection"]
        body = self.dumps(P.inbound_text())
        cases = [
            (self.sign(body, secret="not-the-app-secret"), "bad_signature"),
            (None, "missing_signature"),
            ("sha256=", "bad_signature"),
            ("sha1=" + "0" * 40, "bad_signature"),
            (self.sign(body).upper(), "bad_signature"),
        ]
        with mute_logger(QUIET), self.processing() as trap:
            for signature, reason in cases:
                response = self.post_webhook(body=body, signature=signature)
                self.assertEqual(response.status_code, 403, reason)
                self.assertNotIn("sha256", response.text)
            trap.assert_jobs_count(0)
        self.assertFalse(self.env["wac.webhook.delivery"].search([]))
        counts = {r.reason: r.count for r in Rejection.search([])}
        self.assertEqual(counts, {"bad_signature": 4, "missing_signature": 1})
        self.assertEqual(Rejection.search([], limit=1).last_size, len(body))

    def test_no_app_secret_fails_closed(self):
        self.env["ir.config_parameter"].sudo().set_param(PARAM_APP_SECRET, "")
        with mute_logger(QUIET):
            response = self.post_webhook(P.inbound_text())
            self.assertEqual(response.status_code, 403)
            # Not even a body signed with an empty key gets in.
            response = self.post_webhook(P.inbound_text(), signature=self.sign(
                self.dumps(P.inbound_text()), secret=""))
            self.assertEqual(response.status_code, 403)
        self.assertFalse(self.env["wac.webhook.delivery"].search([]))
        self.assertEqual(self.env["wac.webhook.rejection"].search([]).reason, "no_secret")
        credentials = self.account_a._wac_readiness()[0]
        self.assertFalse(credentials.ok)
        self.assertIn("App Secret not set: every webhook is refused.", credentials.missing)

    def test_app_secret_that_cannot_be_decrypted_answers_503(self):
        """The keys changed: Meta is told to retry (503), one line a minute is logged, no
        traceback, no refusal counted, and the readiness tab says what to do."""
        other_key = Fernet(Fernet.generate_key())
        self.env["ir.config_parameter"].sudo().set_param(
            PARAM_APP_SECRET, other_key.encrypt(self.fake.app_secret.encode()).decode())
        wac_webhook_delivery._secret_warning_due.__init__()  # a fresh minute for this test
        with self.assertLogs("odoo.addons.whatsapp_coexistence", "WARNING") as logs:
            for _request in range(3):
                response = self.post_webhook(P.inbound_text())
                self.assertEqual(response.status_code, 503)
                self.assertEqual(response.json(), {"status": "unavailable"})
        self.assertEqual(len(logs.output), 1, logs.output)
        self.assertIn("App Secret cannot be decrypted", logs.output[0])
        self.assertNotIn(self.fake.app_secret, logs.output[0])
        self.assertFalse(self.env["wac.webhook.delivery"].search([]))
        self.assertFalse(self.env["wac.webhook.rejection"].search([]))
        credentials = self.account_a._wac_readiness()[0]
        self.assertFalse(credentials.ok)
        self.assertTrue(any("cannot be decrypted" in hint and "wa_coexistence_keys" in hint
                            for hint in credentials.missing), credentials.missing)

    def test_unicode_body_is_signed_over_the_escaped_raw_bytes(self):
        payload = P.inbound_text(body="Olá, posso remarcar? äöå 😀", profile_name="João")
        escaped = self.dumps(payload)
        self.assertIn(b"\\u00e4\\u00f6\\u00e5", escaped)
        with self.processing():
            self.assertEqual(self.post_webhook(body=escaped).status_code, 200)
        message = self.env["wac.message"].search([("wamid", "=", P.TEXT_WAMID)])
        self.assertEqual(message.body, "Olá, posso remarcar? äöå 😀")
        self.assertEqual(message.contact_id.profile_name, "João")
        # A signature over decoded (re-serialised) bytes is not Meta's and is refused.
        decoded = json.dumps(payload, ensure_ascii=False).encode()
        with mute_logger(QUIET):
            response = self.post_webhook(body=escaped, signature=self.sign(decoded))
        self.assertEqual(response.status_code, 403)

    def test_duplicate_delivery_is_acknowledged_once(self):
        body = self.dumps(P.inbound_text())
        with self.processing() as trap:
            first = self.post_webhook(body=body)
            second = self.post_webhook(body=body)
            self.assertEqual((first.status_code, second.status_code), (200, 200))
            self.assertEqual(second.json()["status"], "duplicate")
            trap.assert_jobs_count(1)
        delivery = self.env["wac.webhook.delivery"].search([])
        self.assertEqual((len(delivery), delivery.redelivery_count), (1, 1))
        self.assertEqual(self.env["wac.message"].search_count([("wamid", "=", P.TEXT_WAMID)]), 1)

    def test_requests_share_one_waiting_dispatcher(self):
        """Real queue_job rows: Meta's requests enqueue a dispatcher only when none waits, and
        the dispatcher gives each delivery exactly one processing job."""
        Delivery = self.env["wac.webhook.delivery"]
        for n in range(3):
            response = self.post_webhook(P.inbound_text(wamid="wamid.DISPATCH%d" % n))
            self.assertEqual(response.json(), {"status": "ok"})
        dispatchers = self.env["queue.job"].search(
            [("identity_key", "=", DISPATCH_IDENTITY_KEY)])
        self.assertEqual(dispatchers.mapped("state"), ["pending"])
        self.assertEqual(dispatchers.user_id, self.env.ref("base.user_root"))
        deliveries = Delivery.search([])
        self.assertEqual(len(deliveries), 3)
        self.assertFalse(any(deliveries.mapped("dispatched_at")))
        with trap_jobs() as trap:
            self.assertEqual(Delivery._wac_dispatch(), 3)
            self.assertEqual([(job.method_name, job.recordset) for job in trap.enqueued_jobs],
                             [("_wac_process", delivery) for delivery in deliveries.sorted("id")])
            self.assertEqual(Delivery._wac_dispatch(), 0, "nothing is queued twice")
            trap.assert_jobs_count(3)
        deliveries.invalidate_recordset()
        self.assertTrue(all(deliveries.mapped("dispatched_at")))

    def test_cron_queues_deliveries_left_behind(self):
        Delivery = self.env["wac.webhook.delivery"]
        # Dispatchers enqueued, then lost: they never run. (One trap per request: a trap stores
        # a job for real when its identity key is already trapped.)
        for wamid in ("wamid.LEFT", "wamid.FRESH"):
            with trap_jobs() as trap:
                self.post_webhook(P.inbound_text(wamid=wamid))
                self.assertEqual([job.method_name for job in trap.enqueued_jobs],
                                 ["_wac_dispatch"])
        left = Delivery.search([], order="id", limit=1)
        self.env.cr.execute(
            "UPDATE wac_webhook_delivery SET received_at = received_at - interval '2 minutes'"
            " WHERE id = %s", [left.id])
        with trap_jobs() as trap:
            Delivery._wac_cron_dispatch()
            self.assertEqual([(job.method_name, job.recordset) for job in trap.enqueued_jobs],
                             [("_wac_process", left)])
        # A redelivery of the fresh one, still unqueued, asks for a dispatcher again.
        with trap_jobs() as trap:
            response = self.post_webhook(P.inbound_text(wamid="wamid.FRESH"))
            self.assertEqual(response.json(), {"status": "duplicate"})
            self.assertEqual([job.method_name for job in trap.enqueued_jobs], ["_wac_dispatch"])
            self.run_jobs(trap)
        self.assertEqual(
            self.env["wac.message"].search([("wamid", "in", ("wamid.LEFT", "wamid.FRESH"))])
            .mapped("wamid"), ["wamid.FRESH"], "the cron's job was trapped, not run")

    def test_same_message_in_another_delivery_is_not_recorded_twice(self):
        with self.processing():
            self.post_webhook(P.inbound_text())
            # Meta may resend the same message in a different envelope (other entry time).
            other = P.inbound_text()
            other["entry"][0]["time"] = 1749416999
            self.post_webhook(other)
        self.assertEqual(self.env["wac.webhook.delivery"].search_count([]), 2)
        self.assertEqual(self.env["wac.message"].search_count([("wamid", "=", P.TEXT_WAMID)]), 1)

    def test_malformed_json_and_oversized_body(self):
        Rejection = self.env["wac.webhook.rejection"]
        bodies = (b'{"object": "whatsapp_business_account", ', b"[1, 2]", b"\xff\xfe",
                  b'{"object": "whatsapp_business_account", "entry": [], "n": NaN}',
                  b'{"object": "whatsapp_business_account", "entry": [Infinity]}')
        with mute_logger(QUIET):
            for body in bodies:
                response = self.post_webhook(body=body)
                self.assertEqual(response.status_code, 400, body)
            big = b'{"pad": "' + b"x" * (8 * 1024 * 1024 + 1) + b'"}'
            response = self.post_webhook(body=big)
            self.assertEqual(response.status_code, 413)
        counts = {r.reason: r.count for r in Rejection.search([])}
        self.assertEqual(counts, {"bad_json": 5, "too_large": 1})
        self.assertFalse(self.env["wac.webhook.delivery"].search([]))

    def test_batch_mixing_two_companies_is_routed_per_company(self):
        clinic = P.inbound_text(wamid="wamid.clinic1", from_="5511991234567")
        salon = P.inbound_text(phone_number_id=SALON["phone_number_id"],
                               waba_id=SALON["waba_id"], wamid="wamid.salon1",
                               from_="5521988887777")
        batch = {"object": "whatsapp_business_account",
                 "entry": clinic["entry"] + salon["entry"]}
        batch["entry"][0]["changes"].append(
            P.statuses(items=(("wamid.out.clinic", "sent", "1750030073"),))["entry"][0]
            ["changes"][0])
        with self.processing():
            self.post_webhook(batch)
        events = self.env["wac.webhook.event"].search([], order="change_index")
        self.assertEqual(events.mapped("company_id"), self.company_a | self.company_b)
        self.assertEqual(events.mapped("state"), ["done", "done", "done"])
        by_wamid = {m.wamid: m for m in self.env["wac.message"].search([])}
        self.assertEqual(by_wamid["wamid.clinic1"].company_id, self.company_a)
        self.assertEqual(by_wamid["wamid.salon1"].company_id, self.company_b)
        self.assertEqual(by_wamid["wamid.salon1"].partner_id.company_id, self.company_b)

    def test_unknown_number_is_kept_unroutable_then_reprocessed(self):
        payload = P.inbound_text(phone_number_id="777000111222333", waba_id="777000111222000")
        with self.processing():
            self.post_webhook(payload)
        event = self.env["wac.webhook.event"].search([])
        self.assertEqual((event.state, event.company_id.id), ("unroutable", False))
        self.assertFalse(self.env["wac.message"].search([]))
        self.assertFalse(event.with_user(self.manager_a).search([("id", "=", event.id)]),
                         "an unroutable event belongs to no company")
        self.account_b.write({"phone_number_id": "777000111222333"})
        with self.processing():
            event.action_reprocess()
        self.assertEqual((event.state, event.company_id), ("done", self.company_b))
        self.assertEqual(self.env["wac.message"].search([]).company_id, self.company_b)
        # Who reprocessed it is recorded; an unroutable event has no company yet, so its
        # entry is an installation one.
        audit = self.env["wac.audit.log"].search([("action", "=", "reprocess")])
        self.assertEqual((audit.res_id, audit.old_value, audit.company_id.id),
                         (event.id, "unroutable", False))

    def test_unknown_field_and_object_are_ignored(self):
        payload = P.envelope("security", {"event": "PIN_CHANGED"})
        with self.processing():
            self.assertEqual(self.post_webhook(payload).status_code, 200)
            response = self.post_webhook({"object": "page", "entry": []})
            self.assertEqual(response.status_code, 200)
        event = self.env["wac.webhook.event"].search([])
        self.assertEqual((event.field, event.state), ("security", "ignored"))
        other = self.env["wac.webhook.delivery"].search([], limit=1)
        self.assertEqual(other.state, "ignored")
        self.assertIn("whatsapp_business_account", other.error)
