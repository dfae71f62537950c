from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    """18.0.1.2.0: template sync moved from ``wac.account`` to ``wac.template``.

    The daily cron is ``noupdate`` data, so the upgrade does not rewrite it: point it at the
    model that now holds ``_wac_cron_sync_templates``.
    """
    env = api.Environment(cr, SUPERUSER_ID, {})
    cron = env.ref("whatsapp_coexistence.ir_cron_wac_template_sync", raise_if_not_found=False)
    if cron and cron.model_id.model == "wac.account":
        cron.model_id = env["ir.model"]._get("wac.template")
