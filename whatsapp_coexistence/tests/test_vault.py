import logging
import os
import stat

from cryptography.fernet import Fernet

from odoo.tests import tagged
from odoo.tools import config

from ..const import KEY_CONFIG_OPTION
from .common import WacTransactionCase


@tagged("post_install", "-at_install")
class TestVault(WacTransactionCase):
    def _use_keys(self, value):
        """Point the vault at other keys, as an administrator edits the config file."""
        previous = config.get(KEY_CONFIG_OPTION)
        self.addCleanup(config.__setitem__, KEY_CONFIG_OPTION, previous)
        config[KEY_CONFIG_OPTION] = value

    def test_rotation_reencrypts_every_secret(self):
        old_key = config[KEY_CONFIG_OPTION].split(",")[0]
        new_key = Fernet.generate_key().decode()
        self._use_keys("%s,%s" % (new_key, old_key))
        count = self.env["wac.vault"]._rotate_all()
        self.assertGreaterEqual(count, 3, "two tokens and the App Secret")
        self._use_keys(new_key)  # the old key is gone: everything must still decrypt
        self.assertEqual(self.env["wac.vault"]._app_secret(), self.fake.app_secret)
        self.assertEqual(self.account_a.action_test_connection()["params"]["type"], "success")

    def test_missing_key_creates_a_private_key_file_and_warns(self):
        self._use_keys("")
        path = self.env["wac.vault"]._key_file_path()
        if os.path.exists(path):
            os.unlink(path)
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        with self.assertLogs("odoo.addons.whatsapp_coexistence.models.wac_vault",
                             logging.WARNING) as logs:
            ciphertext = self.env["wac.vault"]._encrypt("EAAGsecret000000000000000000000000007")
        self.assertIn("generated the key file", logs.output[0])
        self.assertNotIn("EAAGsecret", "".join(logs.output))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(self.env["wac.vault"]._decrypt(ciphertext),
                         "EAAGsecret000000000000000000000000007")
        credentials = self.account_a._wac_readiness()[0]
        self.assertFalse(credentials.ok)
        self.assertTrue(any("encryption key" in hint for hint in credentials.missing))

    def test_neutralize_clears_credentials(self):
        from odoo.modules.neutralize import get_neutralization_queries
        for query in get_neutralization_queries(["whatsapp_coexistence"]):
            self.env.cr.execute(query)
        self.env.invalidate_all()
        params = self.env["ir.config_parameter"].sudo()
        self.assertFalse(self.account_a.sudo().access_token_enc)
        self.assertEqual(self.account_a.automation_mode, "disabled")
        self.assertEqual(self.account_a.state, "needs_reauth")
        self.assertFalse(params.get_param("whatsapp_coexistence.app_secret_enc"))
        self.assertEqual(params.get_param("whatsapp_coexistence.kill_switch"), "True")
