import logging
import os

from odoo import api, fields, models, tools
from odoo.tools import config

from ..const import KEY_CONFIG_OPTION, KEY_ENV_VAR, KEY_FILE_NAME, PARAM_APP_SECRET
from ..tools.wa_cloud.vault import TokenVault, load_or_create_key_file, mask, parse_keys

_logger = logging.getLogger(__name__)


class WacVault(models.AbstractModel):
    """Encryption of secrets at rest, and the home of this addon's secrets: the accounts' access
    tokens and the installation's App Secret are stored, decrypted and rotated here only.

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

    # ------------------------------------------------------------
    # THE SECRETS OF THIS ADDON
    # ------------------------------------------------------------

    @api.model
    def _account_token(self, account):
        """The decrypted access token of ``account``, or ``False`` when none is stored.

        Only :meth:`wac.account._wac_client` calls it: the one place a token is decrypted.
        """
        return self._decrypt_cached(account.sudo().access_token_enc)

    @api.model
    def _store_account_token(self, account, token):
        """Encrypt ``token`` onto ``account`` with who set it and when; return its hint."""
        hint = mask(token)
        account.sudo().write({
            "access_token_enc": self._encrypt(token),
            "token_set_on": fields.Datetime.now(),
            "token_set_by": self.env.uid,
            "token_hint": hint,
        })
        return hint

    @api.model
    def _forget_account_token(self, account):
        """Drop the token of ``account`` and what was known about it."""
        account.sudo().write({"access_token_enc": False, "token_set_on": False,
                              "token_set_by": False, "token_hint": False})

    @api.model
    def _app_secret(self):
        """The decrypted App Secret, or ``False``; used to check webhook signatures."""
        params = self.env["ir.config_parameter"].sudo()
        return self._decrypt_cached(params.get_param(PARAM_APP_SECRET))

    @api.model
    def _store_app_secret(self, app_secret):
        """Encrypt ``app_secret`` into the installation's settings."""
        self.env["ir.config_parameter"].sudo().set_param(
            PARAM_APP_SECRET, self._encrypt(app_secret))

    @api.model
    def _rotate_all(self):
        """Re-encrypt every stored secret under the current primary key.

        Put the new key first in ``wa_coexistence_keys`` (keep the old ones after it), run
        ``env["wac.vault"]._rotate_all()`` from ``odoo shell`` and commit; the old keys can
        then be removed. Returns the number of secrets re-encrypted.
        """
        count = 0
        for account in self.env["wac.account"].sudo().with_context(active_test=False).search(
                [("access_token_enc", "!=", False)]):
            account.access_token_enc = self._rotate(account.access_token_enc)
            count += 1
        params = self.env["ir.config_parameter"].sudo()
        if params.get_param(PARAM_APP_SECRET):
            params.set_param(PARAM_APP_SECRET, self._rotate(params.get_param(PARAM_APP_SECRET)))
            count += 1
        _logger.info("Re-encrypted %d WhatsApp Coexistence secret(s) under the primary key.", count)
        return count
