import dataclasses
import threading
from contextlib import closing

from odoo import SUPERUSER_ID, api
from odoo.tests import TransactionCase, tagged

from ..models.wac_webhook_units import RETRY, classify
from ..tools.wa_cloud import webhook
from ..tools.wa_cloud.webhook import TemplateEvent
from . import payloads as P

NUMBER = "5511912340009"
RACE_WABA = "990000000000009"
QUALITY = "message_template_quality_update"


def quality_event(template_id, quality):
    """A template quality webhook as :func:`webhook.template_event` parses it."""
    return TemplateEvent(field=QUALITY, event=None, template_id=template_id, name=None,
                         language=None, reason=None, category=None, previous_quality=None,
                         new_quality=quality, previous_category=None, new_category=None,
                         raw={})


@tagged("post_install", "-at_install")
class TestWebhookRaces(TransactionCase):
    """Two webhook jobs write the same new or existing row at once, each in a real transaction
    (REPEATABLE READ, like Odoo's). The one that comes second fails quietly with an error
    classified *retry*: no ERROR line from the query, and its retry finds the row there.

    The fixtures are committed (another transaction must see them) and removed afterwards.
    """

    def setUp(self):
        super().setUp()
        self.company_id = self.env.ref("base.main_company").id
        self.addCleanup(self.remove_committed)

    def remove_committed(self):
        with closing(self.registry.cursor()) as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            contacts = env["wac.contact"].with_context(active_test=False).search(
                [("phone_key", "like", NUMBER[-8:])])
            partners = contacts.partner_id
            contacts.unlink()
            partners.unlink()
            env["wac.account"].search([("waba_id", "=", RACE_WABA)]).unlink()
            cr.commit()  # pylint: disable=invalid-commit

    def two_transactions(self):
        """Two real transactions; the second one's snapshot is taken now, before the first
        one writes anything."""
        cursors = [self.registry.cursor() for _n in range(2)]
        for cr in cursors:
            self.addCleanup(cr.close)
        first, second = (api.Environment(cr, SUPERUSER_ID, {}) for cr in cursors)
        second.cr.execute("SELECT 1 FROM wac_contact LIMIT 1")
        return first, second

    def race(self, first_job, second_job):
        """``first_job(env)`` commits after ``second_job``'s transaction began: ``second_job``
        fails quietly, then succeeds on its retry (a new transaction) and commits. Return the
        second environment, its cache cleared."""
        first, second = self.two_transactions()
        first_job(first)
        first.cr.commit()
        self.assert_retried_quietly(lambda: second_job(second))
        second.cr.rollback()  # the retry
        second_job(second)
        second.cr.commit()
        second.invalidate_all()
        return second

    def assert_retried_quietly(self, apply):
        """``apply()`` raises an error classified *retry* and logs no ERROR from the query."""
        with self.assertNoLogs("odoo.sql_db", "ERROR"), self.assertRaises(Exception) as caught:
            apply()
        self.assertEqual(classify(caught.exception), RETRY, caught.exception)

    # ------------------------------------------------------------------ contacts

    def resolve(self, env, name):
        account = env["wac.account"].new({"company_id": self.company_id})
        contacts = env["wac.contact"]._wac_resolve(account, [(NUMBER, None, name)], lock=True)
        env.flush_all()
        return contacts[NUMBER]

    def test_contact_created_by_a_committed_job_is_there_on_retry(self):
        first, second = self.two_transactions()
        created = self.resolve(first, "First")
        first.cr.commit()
        self.assert_retried_quietly(lambda: self.resolve(second, "Second"))
        second.cr.rollback()  # the job's retry: a new transaction
        self.assertEqual(self.resolve(second, "Second"), created.with_env(second))
        second.cr.commit()

    def test_contact_created_by_a_running_job_waits_for_it(self):
        """The second job waits for the first one's transaction instead of inserting a row
        that the unique key then refuses with an ERROR line."""
        first, second = self.two_transactions()
        created = self.resolve(first, "First")
        outcome = {}

        def other_job():
            try:
                self.resolve(second, "Second")
            except Exception as error:  # the outcome is asserted below
                outcome["error"] = error

        with self.assertNoLogs("odoo.sql_db", "ERROR"):
            thread = threading.Thread(target=other_job)
            thread.start()
            thread.join(1.0)
            self.assertTrue(thread.is_alive(), "the second job waits for the first one")
            first.cr.commit()
            thread.join(30)
        self.assertEqual(classify(outcome.get("error")), RETRY, outcome)
        second.cr.rollback()
        self.assertEqual(self.resolve(second, "Second"), created.with_env(second))

    def changed_meanwhile(self, first, second, contact):
        """Commit ``contact`` as ``first`` left it, start ``second`` (a job) after that, then
        change the contact in ``first`` and commit: the job's snapshot misses the change."""
        first.cr.commit()
        second.cr.rollback()
        second.cr.execute("SELECT 1 FROM wac_contact LIMIT 1")
        first["wac.contact"].browse(contact.id).app_name = "Changed meanwhile"
        first.flush_all()
        first.cr.commit()

    def test_archived_contact_reactivated_by_a_history_job_is_retried_quietly(self):
        """History imports resolve their contacts without locking them (they create most);
        one the address book removed is reactivated, and a state sync that changed it
        meanwhile must make that update fail quietly (it logged an ERROR line: 144 of them
        in one fuzz run, one per history change of that contact)."""
        first, second = self.two_transactions()
        archived = self.resolve(first, "Archived")
        archived.active = False
        self.changed_meanwhile(first, second, archived)

        def history_resolve():
            account = second["wac.account"].new({"company_id": self.company_id})
            second["wac.contact"]._wac_resolve(account, [(NUMBER, None, None)])
            second.flush_all()

        self.assert_retried_quietly(history_resolve)
        second.cr.rollback()  # the retry
        history_resolve()
        self.assertTrue(second["wac.contact"].browse(archived.id).active)

    def test_contact_removed_by_a_state_sync_is_retried_quietly(self):
        """The address book's ``remove`` archives the contact: a job that changed it
        meanwhile makes that update fail quietly (the 10,000-delivery fuzz logged 7,523
        ERROR lines of it)."""
        first, second = self.two_transactions()
        contact = self.resolve(first, "In the book")
        self.changed_meanwhile(first, second, contact)
        item = webhook.state_sync(P.state_sync_remove(phone_number=NUMBER)["entry"][0][
            "changes"][0]["value"])

        def remove():
            account = second["wac.account"].new({"company_id": self.company_id})
            second["wac.contact"]._wac_ingest_state_sync(account, item)
            second.flush_all()

        self.assert_retried_quietly(remove)
        second.cr.rollback()  # the retry
        remove()
        self.assertFalse(second["wac.contact"].with_context(active_test=False).browse(
            contact.id).active)

    # ------------------------------------------------------------------ templates

    def test_template_row_updated_by_a_committed_job_is_retried_quietly(self):
        with closing(self.registry.cursor()) as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            account = env["wac.account"].create({
                "company_id": self.company_id, "waba_id": RACE_WABA,
                "phone_number_id": "990000000000019", "display_phone_number": "+55 11 91234-0009"})
            env["wac.template"].create({
                "company_id": self.company_id, "account_id": account.id, "name": "race",
                "language": "pt_BR", "meta_template_id": "race-template"})
            cr.commit()  # pylint: disable=invalid-commit

        def apply(env, quality):
            Template = env["wac.template"]
            Template._wac_apply_event(env["wac.account"].browse(account.id),
                                      quality_event("race-template", quality))
            env.flush_all()

        second = self.race(lambda env: apply(env, "YELLOW"), lambda env: apply(env, "RED"))
        template = second["wac.template"].search([("meta_template_id", "=", "race-template")])
        self.assertEqual(template.quality_score, "RED")

    # ------------------------------------------------------------------ the account row

    def test_account_row_updated_by_a_committed_job_is_retried_quietly(self):
        """Two account updates of one account at once (a disconnection and a quality flag,
        the fuzz's 121 ERROR lines): the second fails at the row's lock, not at the flush."""
        with closing(self.registry.cursor()) as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            account = env["wac.account"].create({
                "company_id": self.company_id, "waba_id": RACE_WABA, "state": "connected",
                "phone_number_id": "990000000000019", "display_phone_number": "+55 11 91234-0009"})
            cr.commit()  # pylint: disable=invalid-commit
        disconnect = webhook.account_update(
            P.account_update_partner_removed()["entry"][0]["changes"][0]["value"])[0]

        def flag_quality(env):
            env["wac.account"].browse(account.id)._wac_write_changes({"quality_rating": "RED"})
            env.flush_all()

        def apply_disconnect(env):
            env["wac.account"].browse(account.id)._wac_apply_account_update(disconnect)
            env.flush_all()

        second = self.race(flag_quality, apply_disconnect)
        self.assertRecordValues(second["wac.account"].browse(account.id), [{
            "state": "disconnected", "quality_rating": "RED", "automation_paused": True}])

    def test_template_created_by_a_committed_job_is_retried_quietly(self):
        """A new template named by two jobs' status webhooks: the second one's ``INSERT`` hit
        the unique key with an ERROR line (999 in one fuzz run) and its event failed."""
        with closing(self.registry.cursor()) as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            account = env["wac.account"].create({
                "company_id": self.company_id, "waba_id": RACE_WABA,
                "phone_number_id": "990000000000019", "display_phone_number": "+55 11 91234-0009"})
            cr.commit()  # pylint: disable=invalid-commit
        payload = P.template_status(event="APPROVED", name="race_new", language="pt_BR")
        event = webhook.template_event("message_template_status_update",
                                       payload["entry"][0]["changes"][0]["value"])[0]

        def apply(env, template_id):
            named = dataclasses.replace(event, template_id=template_id)
            env["wac.template"]._wac_apply_event(env["wac.account"].browse(account.id), named)
            env.flush_all()

        second = self.race(lambda env: apply(env, "race-new-1"),
                           lambda env: apply(env, "race-new-2"))
        template = second["wac.template"].search([("account_id", "=", account.id)])
        self.assertEqual((len(template), template.meta_template_id), (1, "race-new-2"))

    # ------------------------------------------------------------------ number changes

    def test_messages_folded_by_a_number_change_are_retried_quietly(self):
        """A number change folds the duplicate contact's messages into the kept contact
        while a status job updates one of those messages: the loser is retried, quietly."""
        with closing(self.registry.cursor()) as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            kept, duplicate = env["wac.contact"].create([
                {"company_id": self.company_id, "wa_id": NUMBER, "phone_key": NUMBER},
                {"company_id": self.company_id, "wa_id": "5511812340009",
                 "phone_key": "5511812340009"}])
            message = env["wac.message"].create({
                "company_id": self.company_id, "contact_id": duplicate.id,
                "wamid": "wamid.RACE.ABSORB", "direction": "in", "source": "customer"})
            cr.commit()  # pylint: disable=invalid-commit
        self.addCleanup(self.remove_absorbed, message.id, duplicate.id)
        first, second = self.two_transactions()
        first["wac.message"].browse(message.id).write({"body": "status job"})
        first.flush_all()
        first.cr.commit()

        def absorb():
            second["wac.contact"].browse(kept.id)._wac_absorb(
                second["wac.contact"].browse(duplicate.id))
            second.flush_all()

        self.assert_retried_quietly(absorb)
        second.cr.rollback()  # the retry
        absorb()
        second.cr.commit()
        second.invalidate_all()
        moved = second["wac.message"].browse(message.id)
        self.assertEqual((moved.contact_id.id, moved.body), (kept.id, "status job"))

    def remove_absorbed(self, message_id, duplicate_id):
        """The message and the retired contact (its key freed, so ``remove_committed`` does
        not find it)."""
        with closing(self.registry.cursor()) as cr:
            cr.execute("DELETE FROM wac_message WHERE id = %s", [message_id])
            cr.execute("DELETE FROM wac_contact WHERE id = %s", [duplicate_id])
            cr.commit()  # pylint: disable=invalid-commit

    # ------------------------------------------------------------------ history media

    def test_placeholder_updated_by_a_committed_job_is_retried_quietly(self):
        """A history media change upgrades a placeholder that another job changed after
        this job's snapshot: the upgrade is retried, quietly (the fuzz bench's two-server
        run logged 105 ERROR lines of this update, one per retry)."""
        with closing(self.registry.cursor()) as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            account = env["wac.account"].create({
                "company_id": self.company_id, "waba_id": RACE_WABA,
                "phone_number_id": "990000000000019", "display_phone_number": "+55 11 91234-0009"})
            message = env["wac.message"].create({
                "company_id": self.company_id, "account_id": account.id,
                "wamid": "wamid.RACE.MEDIA", "direction": "in", "source": "history",
                "message_type": "image", "is_placeholder": True})
            cr.execute("SELECT coalesce(max(id), 0) FROM queue_job")
            last_job = cr.fetchone()[0]
            cr.commit()  # pylint: disable=invalid-commit
        self.addCleanup(self.remove_upgraded, message.id, last_job)
        media = webhook.history_media(P.history_media(
            wamid="wamid.RACE.MEDIA")["entry"][0]["changes"][0]["value"])
        first, second = self.two_transactions()
        first["wac.message"].browse(message.id).write({"body": "other job"})
        first.flush_all()
        first.cr.commit()

        def upgrade():
            second["wac.message"]._wac_upgrade_placeholders(
                second["wac.account"].browse(account.id), media)
            second.flush_all()

        self.assert_retried_quietly(upgrade)
        second.cr.rollback()  # the retry
        upgrade()
        second.cr.commit()
        second.invalidate_all()
        upgraded = second["wac.message"].browse(message.id)
        self.assertEqual((upgraded.is_placeholder, upgraded.media_id, upgraded.body),
                         (False, "24230790383178626", "Black Prince echeveria"))

    def remove_upgraded(self, message_id, last_job):
        """The message and the download job its upgrade enqueued."""
        with closing(self.registry.cursor()) as cr:
            cr.execute("DELETE FROM queue_job WHERE id > %s", [last_job])
            cr.execute("DELETE FROM wac_message WHERE id = %s", [message_id])
            cr.commit()  # pylint: disable=invalid-commit
