"""Token vault: Fernet round trip, key rotation, key file, masking."""

import os
import stat

import pytest
from cryptography.fernet import Fernet

from wa_cloud.vault import (
    TokenVault,
    VaultError,
    fingerprint,
    generate_key,
    load_or_create_key_file,
    mask,
    parse_keys,
)

SECRET = "EAAGm0PX4ZCpsBAKZCqLZAbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


def test_round_trip():
    vault = TokenVault([generate_key()])
    token = vault.encrypt(SECRET)
    assert SECRET not in token
    assert vault.decrypt(token) == SECRET
    assert vault.decrypt(vault.encrypt("")) == ""
    assert vault.decrypt(vault.encrypt("ção ✓")) == "ção ✓"


def test_accepts_bytes_and_comma_separated_string():
    key1, key2 = generate_key(), generate_key()
    assert TokenVault([key1.encode()]).key_count == 1
    vault = TokenVault(f"{key1}, {key2}")
    assert vault.key_count == 2
    assert vault.primary_fingerprint == fingerprint(key1)


def test_rotation_with_two_keys():
    old_key, new_key = generate_key(), generate_key()
    old_vault = TokenVault([old_key])
    old_ciphertext = old_vault.encrypt(SECRET)

    rotating = TokenVault([new_key, old_key])
    assert rotating.decrypt(old_ciphertext) == SECRET
    assert rotating.needs_rotation(old_ciphertext) is True
    rotated = rotating.rotate(old_ciphertext)
    assert rotated != old_ciphertext
    assert rotating.needs_rotation(rotated) is False
    assert rotating.needs_rotation(rotating.encrypt(SECRET)) is False

    new_only = TokenVault([new_key])
    assert new_only.decrypt(rotated) == SECRET
    with pytest.raises(VaultError):
        new_only.decrypt(old_ciphertext)
    with pytest.raises(VaultError):
        new_only.needs_rotation(old_ciphertext)


def test_bad_token_message_has_no_secret():
    key = generate_key()
    ciphertext = TokenVault([generate_key()]).encrypt(SECRET)
    vault = TokenVault([key])
    for bad in (ciphertext, ciphertext[:-4] + "AAAA", "not-a-token", "é", None, 42):
        with pytest.raises(VaultError) as info:
            vault.decrypt(bad)
        text = f"{info.value} {info.value!r}"
        assert SECRET not in text
        assert key not in text
        if isinstance(bad, str) and len(bad) > 4:
            assert bad not in text
        assert info.value.__cause__ is None
    with pytest.raises(VaultError) as info:
        vault.rotate(ciphertext)
    assert ciphertext not in str(info.value)


def test_bad_key_message_has_no_key():
    good = generate_key()
    bad = "this-is-not-a-fernet-key-but-looks-secret"
    with pytest.raises(VaultError, match="Key #2") as info:
        parse_keys(f"{good},{bad}")
    assert bad not in str(info.value) and good not in str(info.value)
    with pytest.raises(VaultError):
        TokenVault([bad])
    with pytest.raises(VaultError, match="No encryption key"):
        parse_keys(" , ")
    with pytest.raises(VaultError):
        TokenVault([])


def test_parse_keys_separators():
    keys = [generate_key() for _ in range(3)]
    assert parse_keys(f"{keys[0]},{keys[1]}\n  {keys[2]}") == keys
    assert parse_keys(keys[0].encode()) == [keys[0]]


def test_encrypt_refuses_non_text():
    with pytest.raises(VaultError):
        TokenVault([generate_key()]).encrypt(b"bytes")


def test_repr_shows_no_key():
    key = generate_key()
    vault = TokenVault([key])
    assert key not in repr(vault)
    assert fingerprint(key) in repr(vault)


def test_fingerprint_is_short_and_stable():
    key = generate_key()
    assert fingerprint(key) == fingerprint(key.encode()) == fingerprint(f" {key}\n")
    assert len(fingerprint(key)) == 12
    assert fingerprint(key) != fingerprint(generate_key())
    assert fingerprint(key) not in key


def test_generate_key_is_a_fernet_key():
    Fernet(generate_key())


def test_key_file_created_with_0600(tmp_path):
    path = tmp_path / "deep" / "dir" / "whatsapp_coexistence.key"
    keys, created = load_or_create_key_file(path)
    assert created is True
    assert len(keys) == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    again, created_again = load_or_create_key_file(str(path))
    assert (again, created_again) == (keys, False)
    assert TokenVault(again).decrypt(TokenVault(keys).encrypt("x")) == "x"


def test_key_file_with_several_keys_and_comments(tmp_path):
    path = tmp_path / "keys"
    new_key, old_key = generate_key(), generate_key()
    path.write_text(f"# primary\n{new_key}\n\n{old_key}  # previous\n")
    path.chmod(0o600)
    assert load_or_create_key_file(path) == ([new_key, old_key], False)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_refuses_group_or_world_access(tmp_path, mode):
    path = tmp_path / "keys"
    key = generate_key()
    path.write_text(key + "\n")
    path.chmod(mode)
    with pytest.raises(VaultError, match="chmod 600") as info:
        load_or_create_key_file(path)
    assert key not in str(info.value)


def test_key_file_with_invalid_key(tmp_path):
    path = tmp_path / "keys"
    path.write_text("not-a-key\n")
    path.chmod(0o600)
    with pytest.raises(VaultError, match="Key #1") as info:
        load_or_create_key_file(path)
    assert "not-a-key" not in str(info.value)


def test_key_file_race_keeps_first_writer(tmp_path, monkeypatch):
    path = tmp_path / "keys"
    winner = generate_key()
    real_link = os.link

    def link_after_someone_else(src, dst):
        # Another worker creates the file between our exists() check and our link().
        fd = os.open(dst, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.write(fd, (winner + "\n").encode())
        os.close(fd)
        return real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_someone_else)
    keys, created = load_or_create_key_file(path)
    assert (keys, created) == ([winner], False)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "secret, keep, expected",
    [
        ("", 4, ""),
        (None, 4, ""),
        ("short", 4, "…"),
        ("12345678901", 4, "…"),
        ("123456789012", 4, "…9012"),
        (SECRET, 4, "…6789"),
        (SECRET, 10, "…6789"),
        (SECRET, 2, "…89"),
        (SECRET, 0, "…"),
    ],
)
def test_mask(secret, keep, expected):
    assert mask(secret, keep) == expected
