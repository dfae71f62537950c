"""Phone normalisation and identity matching (reference §7, §2.9)."""

import phonenumbers
import pytest

from wa_cloud.phone import (
    canonical,
    is_bsuid,
    normalize,
    variants,
    wa_digits,
)


@pytest.mark.parametrize(
    "number, region, expected",
    [
        ("+55 11 98765-4321", None, "+5511987654321"),
        ("(11) 98765-4321", "BR", "+5511987654321"),
        ("(11) 98765-4321", "br", "+5511987654321"),
        ("11 8765-4321", "BR", "+551187654321"),
        ("0055 11 98765 4321", None, "+5511987654321"),
        ("00 1 650 555 1234", "BR", "+16505551234"),
        ("5511987654321", "BR", "+5511987654321"),
        ("5511987654321", None, "+5511987654321"),
        ("+1 (650) 555-1234", None, "+16505551234"),
        ("650.555.1234", "US", "+16505551234"),
        ("16505551234", None, "+16505551234"),
        # A US wa_id read by a Brazilian company: the valid international reading wins.
        ("16505551234", "BR", "+16505551234"),
        ("+54 9 11 2345-6789", None, "+5491123456789"),
        ("whatsapp:+5547991234567", None, "+5547991234567"),
    ],
)
def test_normalize(number, region, expected):
    assert normalize(number, region) == expected


def test_normalize_keeps_legacy_brazilian_mobile_that_libphonenumber_calls_invalid():
    # 12-digit wa_id without the 9th digit: a real WhatsApp id (reference §7).
    parsed = phonenumbers.parse("+551187654321")
    assert normalize("551187654321") == "+551187654321"
    assert normalize("+55 21 8765-4321") == "+552187654321"
    assert phonenumbers.is_possible_number(parsed)


@pytest.mark.parametrize(
    "garbage", [None, "", "   ", "garbage", "call me", "123", "+", "++55", "12ab34567890", "0"]
)
def test_normalize_garbage(garbage):
    assert normalize(garbage, "BR") is None


def test_wa_digits():
    assert wa_digits("+55 (11) 98765-4321") == "5511987654321"
    assert wa_digits(None) == ""


@pytest.mark.parametrize(
    "number, expected",
    [
        # 12-digit wa_id of an account created before the 9th digit (São Paulo, DDD 11).
        ("551187654321", ["551187654321", "5511987654321"]),
        ("5511987654321", ["5511987654321", "551187654321"]),
        ("+55 21 7654-3210", ["552176543210", "5521976543210"]),
        ("5547988887777", ["5547988887777", "554788887777"]),
        ("556186543210", ["556186543210", "5561986543210"]),
        # Landlines (first digit 2-5) never got the 9: no variant.
        ("551133334444", ["551133334444"]),
        ("554732221111", ["554732221111"]),
        # Recent 9-prefixed mobile ranges (9 + 1...) never existed without the 9.
        ("5511912345678", ["5511912345678"]),
        # Argentina: inbound 549... <-> 54...
        ("5491123456789", ["5491123456789", "541123456789"]),
        ("541123456789", ["541123456789", "5491123456789"]),
        # Others: just the number.
        ("16505551234", ["16505551234"]),
        ("442079460958", ["442079460958"]),
        ("", []),
    ],
)
def test_variants(number, expected):
    assert variants(number) == expected


@pytest.mark.parametrize(
    "number, expected",
    [
        ("551187654321", "5511987654321"),
        ("5511987654321", "5511987654321"),
        ("+55 47 8888-7777", "5547988887777"),
        ("551133334444", "551133334444"),
        ("541123456789", "5491123456789"),
        ("5491123456789", "5491123456789"),
        ("+1 650 555 1234", "16505551234"),
    ],
)
def test_canonical(number, expected):
    assert canonical(number) == expected


def test_both_brazilian_forms_share_one_canonical_key():
    assert canonical("551187654321") == canonical("5511987654321")
    assert canonical("5491123456789") == canonical("541123456789")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("US.13491208655302741918", True),
        ("BR.abcDEF123", True),
        ("US.ENT.13491208655302741918", True),
        ("US." + "a" * 128, True),
        ("US." + "a" * 129, False),
        ("us.1234", False),
        ("USA.1234", False),
        ("US.", False),
        ("US.12-34", False),
        ("16505551234", False),
        (None, False),
    ],
)
def test_is_bsuid(value, expected):
    assert is_bsuid(value) is expected


def test_non_ascii_digits_make_no_foreign_key():
    """Found by tests/test_property_phone.py: Arabic-Indic digits gave a key of those digits,
    which never matched the same number written in ASCII by Meta."""
    assert wa_digits("+٥٥ ١١") == "5511"
    assert canonical("٥٥١١٩٨٧٦٥٤٣٢١") == canonical("5511987654321")
