from odoo.tools.sql import column_exists

_AUDIT = """now() at time zone 'UTC', now() at time zone 'UTC', 1, 1"""


def migrate(cr, version):
    """18.0.1.2.0: redeliveries and history progress leave the hot rows; delivery jobs get an
    identity key.

    * ``wac_webhook_delivery.redelivery_count`` becomes one ``wac_webhook_redelivery`` row per
      redelivery (a redelivery no longer updates the delivery row).
    * The account's ``history_*`` columns are now computed from ``wac_history_chunk``: the
      request date is kept, a declined sync becomes a declined chunk row.
    * Delivery jobs carry ``wac-delivery-<id>`` so that the minute cron can tell a dead one:
      waiting jobs enqueued before (without it) are cancelled and their deliveries queued
      again; a delivery already split waits for its events as *processing*.
    """
    _migrate_redeliveries(cr)
    _migrate_history(cr)
    _migrate_delivery_jobs(cr)


def _migrate_redeliveries(cr):
    if not column_exists(cr, "wac_webhook_delivery", "redelivery_count"):
        return
    cr.execute(f"""
        INSERT INTO wac_webhook_redelivery
               (body_sha256, received_at, create_date, write_date, create_uid, write_uid)
        SELECT d.body_sha256, d.received_at, {_AUDIT}
          FROM wac_webhook_delivery d, generate_series(1, d.redelivery_count)
         WHERE d.redelivery_count > 0
    """)
    cr.execute("ALTER TABLE wac_webhook_delivery DROP COLUMN redelivery_count")


def _migrate_history(cr):
    if not column_exists(cr, "wac_account", "history_state"):
        return
    cr.execute("""
        UPDATE wac_account SET history_requested_on = COALESCE(onboarded_on, write_date)
         WHERE history_state IS NOT NULL AND history_state != 'none'
    """)
    cr.execute(f"""
        INSERT INTO wac_history_chunk
               (company_id, account_id, phase, chunk_order, progress, message_count, declined,
                create_date, write_date, create_uid, write_uid)
        SELECT company_id, id, 0, 0, 0, 0, true, {_AUDIT}
          FROM wac_account WHERE history_state = 'declined'
        ON CONFLICT (account_id, phase, chunk_order) DO UPDATE SET declined = true
    """)
    cr.execute("""
        ALTER TABLE wac_account DROP COLUMN history_state, DROP COLUMN history_phase,
                                DROP COLUMN history_progress, DROP COLUMN history_chunks,
                                DROP COLUMN history_messages
    """)


def _migrate_delivery_jobs(cr):
    cr.execute("""
        UPDATE queue_job SET state = 'cancelled',
                             result = 'Replaced on upgrade by a job with an identity key'
         WHERE model_name = 'wac.webhook.delivery' AND method_name = '_wac_process'
           AND identity_key IS NULL AND state IN ('pending', 'enqueued', 'wait_dependencies')
    """)
    cr.execute("""
        UPDATE wac_webhook_delivery d SET state = 'processing'
         WHERE d.state = 'received'
           AND EXISTS (SELECT FROM wac_webhook_event e WHERE e.delivery_id = d.id)
    """)
    cr.execute("""
        UPDATE wac_webhook_delivery d SET dispatched_at = NULL
         WHERE d.state = 'received'
           AND NOT EXISTS (SELECT FROM wac_webhook_event e WHERE e.delivery_id = d.id)
    """)
