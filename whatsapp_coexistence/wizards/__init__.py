from . import wac_golive_override
from . import wac_conversation_reply
