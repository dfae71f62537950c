import secrets

from .const import PARAM_VERIFY_TOKEN


def post_init_hook(env):
    """Generate the webhook verify token once, at install."""
    params = env["ir.config_parameter"].sudo()
    if not params.get_param(PARAM_VERIFY_TOKEN):
        params.set_param(PARAM_VERIFY_TOKEN, secrets.token_urlsafe(32))
