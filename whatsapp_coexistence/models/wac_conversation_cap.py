"""Which of the account's limits a person's reply obeys: the one place that decides it.

- **Meta's pacing applies to every message.** A reply takes its slot under the company's
  throughput (20 messages/s for a coexistence number, 130429 beyond it) and the spacing
  between two messages to one person (the pair rate limit, 131056), in the buckets the
  automation uses (``wac.rate.bucket._wac_limits``): Meta counts a person's words and the
  automation's together. A person may wait a few seconds for the slot
  (:data:`REPLY_MAX_WAIT`, enough for the default 6 s spacing, so that a text and its files
  go one after the other); beyond it the composer says when to try again.
- **The daily cap per person** (``recipient_daily_cap``) is the business's own guard against
  flooding a customer with messages it starts. A person answering a customer who wrote in the
  last 24 h starts nothing: the answer is neither stopped by the cap nor counted in it (else a
  conversation in the morning would block the afternoon's reminder). A template a person sends
  after the window closed starts a conversation, as automation does (business-initiated in
  Meta's terms, reference §4.3-4.4): it obeys the cap and counts toward it
  (``wac.message.reply_outside_window``).
- **The automation mode and the kill switch** govern the automated appointment messages, not
  a person answering (``_wac_reply_blocker``).
"""

import math

from odoo import models
from odoo.exceptions import UserError

from odoo.addons.queue_job.exception import RetryableJobError

#: Longest a person's reply waits for its slot, in the request (seconds): the default spacing
#: between two messages to one person (6 s) plus a margin. A job waits at most
#: ``wac_rate_limit.MAX_SLEEP`` and is postponed; a person would rather wait a moment.
REPLY_MAX_WAIT = 8.0


class WacConversation(models.Model):
    _inherit = "wac.conversation"  # pylint: disable=consider-merging-classes-inherited

    def _wac_reply_starts_conversation(self, payload):
        """Whether this reply is business-initiated: a template while the window is closed
        (free text cannot go then: ``_wac_reply_blocker``)."""
        self.ensure_one()
        return payload.get("type") == "template" and not self.window_open

    def _wac_reply_cap_refusal(self, payload):
        """Why the daily cap per person stops this reply, or ``None`` (only a reply that
        starts a conversation is capped)."""
        self.ensure_one()
        if not self._wac_reply_starts_conversation(payload):
            return None
        account = self.company_id.sudo().wa_account_id
        refusal = self.env["wac.rate.bucket"]._wac_daily_cap_refusal(
            account, self.contact_id, self._wac_recipient(), self.env["wac.message"])
        if not refusal:
            return None
        return self.env._("%(refusal)s Outside the 24 h window a template starts a "
                          "conversation, like the automated messages: send it tomorrow, or "
                          "answer freely once the customer writes.", refusal=refusal)

    def _wac_reply_slot(self, side, account, to):
        """Take the reply's slot under Meta's pacing (company and person), on ``side``.

        :returns: the ``Pace`` of ``wac.rate.bucket._wac_take_slot``
        :raises UserError: the slot is more than :data:`REPLY_MAX_WAIT` away (says when)
        """
        Bucket = self.env["wac.rate.bucket"]
        try:
            return Bucket._wac_take_slot(side, Bucket._wac_limits(account, to),
                                         max_wait=REPLY_MAX_WAIT)
        except RetryableJobError as error:
            raise UserError(self.env._(
                "WhatsApp paces messages to one person and per number (shared with the "
                "automated messages): the next message to %(name)s can go in %(seconds)s s. "
                "Try again then; nothing was sent.", name=self.display_name,
                seconds=math.ceil(error.seconds or 1))) from None
