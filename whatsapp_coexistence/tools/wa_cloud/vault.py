"""Encryption at rest for tenant access tokens and the app secret (Fernet / MultiFernet).

Keys live outside the database (config option, environment variable or a 0600 key file): a
database dump alone must not reveal any token. The first key encrypts; all keys decrypt, so a
new key can be put first and old ciphertexts re-encrypted with :meth:`TokenVault.rotate`.
https://cryptography.io/en/latest/fernet/#cryptography.fernet.MultiFernet
"""

import contextlib
import hashlib
import os
import re
import secrets
import stat

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class VaultError(Exception):
    """Key or ciphertext problem. Messages never contain a key, a ciphertext or a plaintext."""


def generate_key():
    """Return a new Fernet key (url-safe base64 text).

    :rtype: str
    """
    return Fernet.generate_key().decode("ascii")


def _as_text(key):
    return key.decode("ascii") if isinstance(key, bytes) else str(key)


def _fernet(key, position):
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        # The key itself is a secret: only its position is reported.
        raise VaultError(
            f"Key #{position} is not a valid Fernet key "
            "(32 url-safe base64-encoded bytes, e.g. from generate_key())"
        ) from None


def parse_keys(value):
    """Split comma/whitespace separated Fernet keys and validate each one.

    :param str value: e.g. the ``wa_coexistence_keys`` config option
    :raises VaultError: no key, or a key that is not a Fernet key
    :rtype: list[str]
    """
    value = _as_text(value or "")
    keys = [k for k in re.split(r"[\s,]+", value) if k]
    if not keys:
        raise VaultError("No encryption key configured")
    for position, key in enumerate(keys, 1):
        _fernet(key, position)
    return keys


def fingerprint(key):
    """Short SHA-256 of a key, to show which key is primary without revealing it.

    :rtype: str
    """
    return hashlib.sha256(_as_text(key).strip().encode("ascii")).hexdigest()[:12]


def mask(secret, keep=4):
    """Show at most the last 4 characters of a secret: ``"…1234"``.

    Secrets shorter than 12 characters show only ``"…"``; empty secrets give ``""``.

    :rtype: str
    """
    if not secret:
        return ""
    secret = _as_text(secret)
    keep = max(0, min(int(keep), 4))
    if len(secret) < 12 or not keep:
        return "…"
    return "…" + secret[-keep:]


class TokenVault:
    """Encrypts and decrypts short secrets with a list of Fernet keys (first = primary).

    :param keys: list of keys (``str`` or ``bytes``), or one comma separated string
    :raises VaultError: when no key is given or a key is invalid
    """

    def __init__(self, keys):
        if isinstance(keys, (str, bytes)):
            keys = parse_keys(keys)
        keys = [_as_text(k).strip() for k in keys or () if k]
        if not keys:
            raise VaultError("No encryption key configured")
        self._primary = _fernet(keys[0], 1)
        others = [_fernet(key, position) for position, key in enumerate(keys[1:], 2)]
        self._multi = MultiFernet([self._primary, *others])
        self.key_count = len(keys)
        self.primary_fingerprint = fingerprint(keys[0])

    def __repr__(self):
        return f"<TokenVault keys={self.key_count} primary={self.primary_fingerprint}>"

    def encrypt(self, plaintext):
        """Encrypt ``plaintext`` with the primary key.

        :param str plaintext: the secret
        :rtype: str
        """
        if not isinstance(plaintext, str):
            raise VaultError("Only text can be encrypted")
        return self._multi.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token):
        """Decrypt a ciphertext made with any of the keys.

        :param str token: ciphertext from :meth:`encrypt`
        :raises VaultError: corrupted ciphertext or encrypted with an unknown key
        :rtype: str
        """
        try:
            return self._multi.decrypt(self._bytes(token)).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError):
            raise VaultError(
                "Cannot decrypt the stored secret: it is corrupted or was encrypted with a key "
                f"that is no longer configured (primary key {self.primary_fingerprint})"
            ) from None

    def rotate(self, token):
        """Re-encrypt a ciphertext under the primary key (MultiFernet.rotate).

        :raises VaultError: as :meth:`decrypt`
        :rtype: str
        """
        try:
            return self._multi.rotate(self._bytes(token)).decode("ascii")
        except InvalidToken:
            raise VaultError(
                "Cannot re-encrypt the stored secret: it is corrupted or was encrypted with a key "
                "that is no longer configured"
            ) from None

    def needs_rotation(self, token):
        """Tell whether ``token`` was encrypted with a key other than the primary one.

        :raises VaultError: when no configured key can decrypt it
        :rtype: bool
        """
        data = self._bytes(token)
        try:
            self._primary.decrypt(data)
            return False
        except InvalidToken:
            self.decrypt(token)
            return True

    @staticmethod
    def _bytes(token):
        if isinstance(token, bytes):
            return token
        if isinstance(token, str) and token.isascii():
            return token.encode("ascii")
        raise VaultError("The stored secret is not a valid ciphertext")


def load_or_create_key_file(path):
    """Read keys from ``path`` (one per line, ``#`` comments), creating it if absent.

    A new file holds one fresh key, is created with mode 0600 without ever existing in a
    partial state (written to a private temporary file, then hard-linked into place, which
    fails if another worker created the file first), in directories created with mode 0700.

    :returns: ``(keys, created)``
    :raises VaultError: the file is readable or writable by group/others, or holds no valid key
    :rtype: tuple[list[str], bool]
    """
    path = os.fspath(path)
    created = False
    if not os.path.exists(path):
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        created = _create_exclusive(path, generate_key() + "\n")
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise VaultError(
            f"Key file {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(mode):o}): run chmod 600 {path}"
        )
    with open(path, encoding="ascii") as handle:
        lines = [line.split("#", 1)[0].strip() for line in handle]
    try:
        keys = parse_keys(" ".join(line for line in lines if line))
    except VaultError as exc:
        raise VaultError(f"Key file {path}: {exc}") from None
    return keys, created


def _create_exclusive(path, content):
    """Create ``path`` with ``content`` and mode 0600; ``False`` if it already exists."""
    tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            # The umask cannot widen 0600, but be explicit in case the file system ignored it.
            os.fchmod(handle.fileno(), 0o600)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            # No hard links on this file system: fall back to an exclusive create in place.
            return _create_in_place(path, content)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _create_in_place(path, content):
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    return True
