from . import wac_golive_override
