from . import (
    res_company,
    res_config_settings,
    res_partner,
    wac_account,
    wac_contact,
    wac_message,
    wac_message_status,
    wac_template,
    wac_vault,
    wac_webhook_delivery,
    wac_webhook_event,
    wac_webhook_rejection,
)
