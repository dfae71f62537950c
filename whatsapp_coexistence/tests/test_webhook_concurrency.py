import hashlib
from concurrent.futures import ThreadPoolExecutor

import requests

from odoo.sql_db import db_connect
from odoo.tests import tagged

from ..const import WEBHOOK_ROUTE
from . import payloads as P
from .common import WacHttpCase

COPIES = 8


@tagged("post_install", "-at_install")
class TestWebhookConcurrency(WacHttpCase):
    """Identical deliveries at once, and a redelivery racing its first copy's job.

    Odoo's HTTP tests run every request in the test's transaction, so a second, real
    connection plays the other server process: what it commits comes after this
    transaction's snapshot, as the first copy's commits come after a racing copy's snapshot in
    production.
    """

    def other_connection(self):
        cursor = db_connect(self.env.cr.dbname).cursor()
        self.addCleanup(cursor.close)
        return cursor

    def post_at_once(self, body, copies=COPIES):
        """POST ``body`` from ``copies`` connections at once; return the responses."""
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": self.sign(body)}
        url = self.base_url() + WEBHOOK_ROUTE
        with ThreadPoolExecutor(copies) as pool:
            return list(pool.map(
                lambda _n: requests.post(url, data=body, headers=headers, timeout=60),
                range(copies)))

    def test_identical_copies_at_once_are_stored_once(self):
        body = self.dumps(P.statuses(items=(("wamid.AT.ONCE", "delivered", "1750030080"),)))
        responses = self.post_at_once(body)
        self.assertEqual([r.status_code for r in responses], [200] * COPIES)
        self.assertEqual(sorted(r.json()["status"] for r in responses),
                         ["duplicate"] * (COPIES - 1) + ["ok"])
        delivery = self.env["wac.webhook.delivery"].search(
            [("body_sha256", "=", hashlib.sha256(body).hexdigest())])
        self.assertEqual((len(delivery), delivery.redelivery_count), (1, COPIES - 1))
        self.assertFalse(self.env["wac.webhook.rejection"].search([]))

    def test_redelivery_racing_its_first_copy_job(self):
        """The first copy was stored and its job wrote it, both committed after the snapshot
        of the copies: they are acknowledged as redeliveries, not answered 403 after a replay
        of the request without its body."""
        body = self.dumps(P.statuses(items=(("wamid.RACE", "read", "1750030090"),)))
        sha = hashlib.sha256(body).hexdigest()
        other = self.other_connection()
        other.execute(
            "INSERT INTO wac_webhook_delivery (received_at, body, body_sha256, size, state)"
            " VALUES (now() at time zone 'UTC', %s, %s, %s, 'received') RETURNING id",
            [body.decode(), sha, len(body)])
        delivery_id = other.fetchone()[0]
        other.commit()
        self.addCleanup(lambda: (other.execute(
            "DELETE FROM wac_webhook_delivery WHERE id = %s", [delivery_id]), other.commit()))
        # Its job, in the other process, settles it.
        other.execute("UPDATE wac_webhook_delivery SET state = 'done',"
                      " dispatched_at = now() at time zone 'UTC' WHERE id = %s", [delivery_id])
        other.commit()

        responses = self.post_at_once(body)
        self.assertEqual([r.status_code for r in responses], [200] * COPIES)
        self.assertEqual({r.json()["status"] for r in responses}, {"duplicate"})
        self.assertFalse(self.env["wac.webhook.rejection"].search([]),
                         "no bad_signature counted for a valid delivery")
        self.assertEqual(self.env["wac.webhook.redelivery"].search_count(
            [("body_sha256", "=", sha)]), COPIES)
        other.execute("SELECT count(*), min(state) FROM wac_webhook_delivery"
                      " WHERE body_sha256 = %s", [sha])
        self.assertEqual(other.fetchone(), (1, "done"), "the job's row is left as it wrote it")
