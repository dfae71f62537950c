from . import onboarding
from . import webhook
