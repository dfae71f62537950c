def migrate(cr, version):
    """Deliveries stored before 18.0.1.1.0 got their processing job at ingest: mark them queued,
    so the dispatcher does not enqueue them a second time."""
    cr.execute(
        "UPDATE wac_webhook_delivery SET dispatched_at = received_at WHERE dispatched_at IS NULL")
