from . import test_account
from . import test_security
from . import test_vault
from . import test_webhook
from . import test_webhook_fields
from . import test_webhook_history
from . import test_ui
from . import test_automation
from . import test_send
from . import test_automation_reply, test_template
from . import test_automation_settle
from . import test_rate_limit
from . import test_onboarding
from . import test_monitoring_views
