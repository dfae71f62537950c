"""Property: the phone identity functions never raise, whatever the string, and what they
return can serve as a key: ASCII digits, ``+`` and digits, a BSUID, or ``None``.

Webhooks and people give any text as a number: a ``wa_id`` of ``"abc"``, a name in the
number field, Arabic-Indic digits, NUL, lone surrogates. A key that is empty, or written
with other digits than the ones Meta uses, would make two people one contact or one person
two (issue 9, defect 4).
"""

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from wa_cloud import phone

PROPERTY = settings(max_examples=150)
DIGITS = re.compile(r"[0-9]+")
E164 = re.compile(r"\+[0-9]+")

#: Any text, surrogates included, with the characters numbers are made of more likely.
numbers = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=30),
    st.text(st.sampled_from("0123456789 +-().٠١٢٣٤٥٦٧٨٩０１²³¹₂x\x00\ud800"), max_size=20),
    st.from_regex(r"\+?(55|54|1)[0-9]{8,13}", fullmatch=True),
    st.none(), st.integers(min_value=0, max_value=10**20),
)
regions = st.one_of(st.none(), st.sampled_from(["BR", "br", "AR", "US", "PT", "XX", "", "ß"]),
                    st.text(max_size=3))


@PROPERTY
@given(numbers, regions)
def test_normalize_gives_e164_or_none(number, region):
    result = phone.normalize(number, region)
    assert result is None or E164.fullmatch(result)


@PROPERTY
@given(numbers)
def test_digits_variants_and_canonical_are_ascii_digits(number):
    digits = phone.wa_digits(number)
    assert digits == "" or DIGITS.fullmatch(digits)
    variants = phone.variants(number)
    assert all(DIGITS.fullmatch(v) for v in variants)
    assert len(set(variants)) == len(variants)
    canonical = phone.canonical(number)
    assert canonical == "" or DIGITS.fullmatch(canonical)
    if digits:
        assert variants[0] == digits
        assert canonical in variants


@PROPERTY
@given(numbers)
@example("5499000000000")  # its 12-digit variant 549000000000 once had a key of its own
def test_variants_share_their_canonical_key(number):
    keys = {phone.canonical(v) for v in phone.variants(number)}
    assert len(keys) <= 1


@PROPERTY
@given(st.one_of(numbers, st.binary(max_size=8), st.lists(st.integers(), max_size=2)))
def test_is_bsuid_takes_anything(value):
    assert isinstance(phone.is_bsuid(value), bool)
