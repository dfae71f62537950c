from . import wac_golive_override
from . import wac_resume
from . import wac_change_number
