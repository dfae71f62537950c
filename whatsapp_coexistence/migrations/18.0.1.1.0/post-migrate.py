def migrate(cr, version):
    """18.0.1.1.0: deliveries are queued by a dispatcher; two indexes of wac_message go.

    Deliveries stored before got their processing job at ingest: mark them queued, so the
    dispatcher does not enqueue them a second time. ``wa_send_key`` is served by the
    (company_id, wa_send_key) unique index and ``res_model`` was never selective: Odoo does not
    drop an index whose field loses ``index=True``, so do it here.
    """
    cr.execute(
        "UPDATE wac_webhook_delivery SET dispatched_at = received_at WHERE dispatched_at IS NULL")
    cr.execute("DROP INDEX IF EXISTS wac_message__wa_send_key_index")
    cr.execute("DROP INDEX IF EXISTS wac_message__res_model_index")
