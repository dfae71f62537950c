import logging
import os

from odoo import api, models, tools
from odoo.tools import config

from ..const import KEY_CONFIG_OPTION, KEY_ENV_VAR, KEY_FILE_NAME
from ..tools.wa_cloud.vault import TokenVault, load_or_create_key_file, parse_keys

_logger = logging.getLogger(__name__)


class WacVault(models.AbstractModel):
    """Encryption of secrets at rest.

    The keys never live in the database: they come from the ``wa_coexistence_keys`` option of the
    Odoo config file or the ``WA_COEXISTENCE_KEYS`` environment variable (comma-separated Fernet
    keys, the first one encrypts, all of them decrypt). When neither is set, a key file is created
    in Odoo's data dir with mode 0600, and a warning plus a readiness item say so: a database
    dump then still holds only ciphertext, but the key sits on the same server.
    """

    _name = "wac.vault"
    _description = "WhatsApp Coexistence secret vault"

    # ------------------------------------------------------------
    # KEYS
    # ------------------------------------------------------------

    @api.model
    def _key_source(self):
        """Return ``(keys, source)`` where ``source`` is ``config``, ``env`` or ``file``."""
        if config.get(KEY_CONFIG_OPTION):
            return parse_keys(config[KEY_CONFIG_OPTION]), "config"
        if os.environ.get(KEY_ENV_VAR):
            return parse_keys(os.environ[KEY_ENV_VAR]), "env"
        path = self._key_file_path()
        keys, created = load_or_create_key_file(path)
        if created:
            _logger.warning(
                "No WhatsApp Coexistence encryption key is configured: generated the key file %s. "
                "Move the key to the '%s' option of the Odoo config file or to the %s variable.",
                path, KEY_CONFIG_OPTION, KEY_ENV_VAR,
            )
        return keys, "file"

    @api.model
    def _key_file_path(self):
        return os.path.join(config["data_dir"], KEY_FILE_NAME)

    @api.model
    def _vault(self):
        return TokenVault(self._key_source()[0])

    # ------------------------------------------------------------
    # OPERATIONS
    # ------------------------------------------------------------

    @api.model
    def _encrypt(self, plaintext):
        """Encrypt ``plaintext`` (a str) under the primary key; ``False`` stays ``False``."""
        return self._vault().encrypt(plaintext) if plaintext else False

    @api.model
    def _decrypt(self, ciphertext):
        """Decrypt a value produced by :meth:`_encrypt`; ``False`` stays ``False``.

        :raises wa_cloud.vault.VaultError: with a message that holds no secret
        """
        return self._vault().decrypt(ciphertext) if ciphertext else False

    @api.model
    @tools.ormcache("ciphertext")
    def _decrypt_cached(self, ciphertext):
        """:meth:`_decrypt` for a value read on every request: the App Secret (each webhook), an
        access token (each send).

        Keyed by the ciphertext, so a new or re-encrypted secret is a new entry; the keys only
        change with the server's configuration, which takes a restart.
        """
        return self._decrypt(ciphertext)

    @api.model
    def _rotate(self, ciphertext):
        """Re-encrypt ``ciphertext`` under the current primary key."""
        return self._vault().rotate(ciphertext) if ciphertext else False
