from . import test_account, test_security, test_vault, test_webhook, test_webhook_fields
from . import test_ui
