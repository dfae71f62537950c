"""Media downloads yield to webhook ingest.

A download holds a worker and the CPU for a moment (bench/README.md, ``bench_media.py``): run
during a burst of Meta's webhooks it slows their ingest, and a late status webhook can leave a
send *uncertain*. So a download that finds webhook work waiting postpones itself a few seconds
(:data:`YIELD_SECONDS`), and holds the other waiting downloads with it, so that one job, not
hundreds, passes through a worker each time it looks again. It never waits for ever: a media
whose message arrived more than :data:`MAX_YIELD` ago downloads whatever the backlog. Meta
keeps an inbound media id for 7 days ("Media IDs in webhooks expire after 7 days",
https://developers.facebook.com/documentation/business-messaging/whatsapp/business-phone-numbers/media/),
and the download URL is asked for only when the job runs, so these minutes cost nothing.
"""

from datetime import timedelta

from odoo import api, fields, models

from odoo.addons.queue_job.exception import RetryableJobError

from ..const import CHANNEL_MEDIA, CHANNEL_WEBHOOK

#: Seconds a download waits while webhook work is queued, before it looks again.
YIELD_SECONDS = 5
#: Longest a download yields, counted from its message's arrival (its job's creation for the
#: others it holds); then it runs whatever the backlog: downloads are never starved.
MAX_YIELD = timedelta(minutes=10)


class WacMessage(models.Model):
    _inherit = "wac.message"  # pylint: disable=consider-merging-classes-inherited

    def _wac_media_yield_to_ingest(self):
        """Postpone this message's download while webhook work waits (see the module).

        :raises RetryableJobError: come back in :data:`YIELD_SECONDS`; no try is consumed
        """
        self.ensure_one()
        now = fields.Datetime.now()
        if self.create_date < now - MAX_YIELD or not self._wac_webhook_backlog(now):
            return
        held = self._wac_media_hold_waiting(now)
        raise RetryableJobError(
            "Webhook deliveries are waiting: media download postponed %d s (%d other "
            "downloads held)" % (YIELD_SECONDS, held), seconds=YIELD_SECONDS, ignore_retry=True)

    @api.model
    def _wac_webhook_backlog(self, now):
        """Whether webhook work waits: a job of the webhook channel due and not started, or a
        delivery stored and not dispatched yet (the dispatcher turns it into a job)."""
        # This transaction's own jobs and deliveries too (a job's channel is computed).
        self.env["queue.job"].flush_model()
        self.env["wac.webhook.delivery"].flush_model()
        self.env.cr.execute(
            """
            SELECT EXISTS (SELECT FROM queue_job
                            WHERE channel = %(channel)s AND state IN ('pending', 'enqueued')
                              AND (eta IS NULL OR eta <= %(now)s))
                OR EXISTS (SELECT FROM wac_webhook_delivery
                            WHERE state = 'received' AND dispatched_at IS NULL)
            """, {"channel": CHANNEL_WEBHOOK, "now": now})
        return self.env.cr.fetchone()[0]

    @api.model
    def _wac_media_hold_waiting(self, now):
        """Move the waiting downloads (queued less than :data:`MAX_YIELD` ago) to
        :data:`YIELD_SECONDS` from now; return how many.

        On a cursor of its own, committed: the job that yields is rolled back by queue_job,
        and the runner reschedules a job whose ``eta`` changed (queue_job's notify trigger).
        """
        self.env["queue.job"].flush_model()
        with self.env.registry.cursor() as cr:
            cr.execute(
                """
                UPDATE queue_job SET eta = %(until)s
                 WHERE channel = %(channel)s AND state = 'pending'
                   AND date_created > %(since)s AND (eta IS NULL OR eta < %(until)s)
                """, {"channel": CHANNEL_MEDIA, "since": now - MAX_YIELD,
                      "until": now + timedelta(seconds=YIELD_SECONDS)})
            return cr.rowcount
