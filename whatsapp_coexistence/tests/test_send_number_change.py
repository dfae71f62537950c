from odoo.tests import tagged

from odoo.addons.queue_job.exception import RetryableJobError

from .common import CLINIC
from .common_automation import WacAutomationCase
from .test_business_number_change import NEW_DISPLAY, NEW_ID


@tagged("post_install", "-at_install")
class TestSendAfterNumberChange(WacAutomationCase):
    """A send retried after the company changed number goes out from, and records, the new
    number."""

    def test_retry_after_a_number_change_records_the_new_number(self):
        self.fake.add_phone(CLINIC["waba_id"], NEW_ID, NEW_DISPLAY, is_on_biz_app=False)
        event = self.make_event(self.maria)  # its confirmation job is stored, pending
        (job,) = self.send_jobs(event)
        self.fake.add_fault(code=130429, match={"path": "/messages"})  # throttled: not sent
        self.assertIsInstance(self.run_job(job), RetryableJobError)
        message = self.message_of(event, "confirmation", self.maria)
        self.assertEqual((message.status, message.phone_number_id),
                         ("pending", CLINIC["phone_number_id"]))

        self.account_a._wac_change_number(NEW_ID)
        self.run_job(job)

        message.invalidate_recordset()
        self.assertEqual((message.status, message.phone_number_id), ("accepted", NEW_ID))
        self.assertEqual([m["wamid"] for m in self.fake.messages(NEW_ID)], [message.wamid])
        self.assertFalse(self.fake.messages(CLINIC["phone_number_id"]))
