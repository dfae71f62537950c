"""Constants shared by the models, the controllers and the tests.

Graph facts live in ``tools/wa_cloud``; this module only holds what the Odoo side needs to agree on.
"""

PARAM_PREFIX = "whatsapp_coexistence."
PARAM_APP_ID = PARAM_PREFIX + "app_id"
# The App Secret is stored encrypted (see ``wac.vault``); this parameter holds ciphertext only.
PARAM_APP_SECRET = PARAM_PREFIX + "app_secret_enc"
PARAM_ES_CONFIG_ID = PARAM_PREFIX + "es_config_id"
PARAM_VERIFY_TOKEN = PARAM_PREFIX + "verify_token"
PARAM_GRAPH_VERSION = PARAM_PREFIX + "graph_version"
PARAM_GRAPH_BASE_URL = PARAM_PREFIX + "graph_base_url"
PARAM_KILL_SWITCH = PARAM_PREFIX + "kill_switch"
# Seconds an open send attempt waits for Meta's status before it is *uncertain*.
PARAM_UNCERTAIN_GRACE = PARAM_PREFIX + "uncertain_grace_seconds"

# Meta's own Embedded Signup and coexistence pages use v25.0 in their examples (reference §4.5).
DEFAULT_GRAPH_VERSION = "v25.0"
DEFAULT_GRAPH_BASE_URL = "https://graph.facebook.com"

# Route of our webhook. Odoo Enterprise's ``whatsapp`` module owns ``/whatsapp/webhook``.
WEBHOOK_ROUTE = "/whatsapp_coexistence/webhook"

# Where the Fernet keys come from (never the database): an option of the Odoo config file, or an
# environment variable; both hold comma-separated keys, the first one being the primary key.
KEY_CONFIG_OPTION = "wa_coexistence_keys"
KEY_ENV_VAR = "WA_COEXISTENCE_KEYS"
KEY_FILE_NAME = "whatsapp_coexistence.key"

ACCOUNT_STATES = [
    ("draft", "Not connected"),
    ("connected", "Connected"),
    ("offboarded", "Offboarded (temporary)"),
    ("disconnected", "Disconnected"),
    ("needs_reauth", "Needs a new token"),
    ("error", "Error"),
]

# Meta's quality levels, of a phone number (quality_rating) and of a template (quality_score).
QUALITY_LEVELS = [
    ("GREEN", "High"),
    ("YELLOW", "Medium"),
    ("RED", "Low"),
    ("UNKNOWN", "Unknown"),
]

#: Meta's sample template: it may only reach pilot numbers or dry runs (issue 4).
HELLO_WORLD = "hello_world"

AUTOMATION_MODES = [
    ("disabled", "Disabled"),
    ("dry_run", "Dry run"),
    ("enabled", "Enabled"),
]

# queue_job channels (declared in data/queue_job_data.xml, capacities in the Odoo config file).
# The history channel must run one job at a time: a history sync's chunks share their account's
# progress and contacts.
CHANNEL_WHATSAPP = "root.whatsapp"
CHANNEL_HISTORY = "root.whatsapp.history"
# Inbound media downloads: capacity 1 or 2, so that downloads never take the slots webhook
# ingest and sends need.
CHANNEL_MEDIA = "root.whatsapp.media"
# Webhook processing (the dispatcher, each delivery, an event retried alone) has a channel of
# its own, whose capacity is set below root.whatsapp's: a backlog of deliveries then leaves
# slots to the sends. Its jobs come before the waiting sends in root.whatsapp's queue (a
# smaller priority), so that a send's status is not processed after every send queued behind
# it, which would mark that send *uncertain* although Meta sent it.
CHANNEL_WEBHOOK = "root.whatsapp.webhook"
PRIORITY_WEBHOOK = 5

# The appointment messages, in the order people read them.
MESSAGE_KINDS = ("confirmation", "reminder", "reschedule", "cancellation")
#: Messages about a change of what a customer heard: they follow what was sent before them.
FOLLOW_UP_KINDS = ("reschedule", "cancellation")
