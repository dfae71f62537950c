"""Phone numbers and WhatsApp identities (E.164, ``wa_id``, BSUID).

Three rules drive this module (reference §7 and §2.9):

* Cloud API ``wa_id`` values are digits with the country code and no ``+``. They are Meta's
  login identifiers, so they are never rejected for "validity": libphonenumber marks some
  working Brazilian 8-digit mobiles invalid (google/libphonenumber#1618).
* One person can show up under two numbers: Brazil with/without the mobile 9th digit,
  Argentina with/without the ``9`` after ``54``. :func:`variants` lists both and
  :func:`canonical` picks one key.
* From 2026 Meta adds business-scoped user ids (BSUID, ``US.1349...``), and a user may have no
  phone number in webhooks: https://developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids/
"""

import re
import unicodedata

import phonenumbers

_SCHEME_RE = re.compile(r"^\s*(tel:|whatsapp:)", re.IGNORECASE)
_ALLOWED_RE = re.compile(r"^[\d\s()+.\-/]+$")
_BSUID_RE = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")


def wa_digits(value):
    """Return only the digits of ``value`` (an E.164 number or a ``wa_id``), no ``+``.

    Any decimal digit counts, written as its ASCII digit: a number typed with Arabic-Indic or
    full-width digits gives the same key as Meta's ``wa_id``, never a key of other characters.

    :rtype: str
    """
    digits = re.sub(r"\D", "", str(value or ""))
    if digits.isascii():
        return digits
    return "".join(str(unicodedata.decimal(c)) for c in digits)


def _parse(text, region):
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return parsed if phonenumbers.is_possible_number(parsed) else None


def normalize(number, default_region=None):
    """Return ``number`` in E.164 (``+5511987654321``), or ``None`` if it cannot be parsed.

    Accepts ``+``, spaces, dashes, dots, parentheses, a leading ``00`` and national formats
    (with ``default_region``, the company's country code such as ``"BR"``: without it OCA's
    gateway stripped the first digit of local numbers, OCA/social#1744). Digits-only input longer
    than 10 digits is also tried as an international number (a ``wa_id``); when both readings
    are possible, a valid one wins, then the national reading.

    Only :func:`phonenumbers.is_possible_number` is required, not ``is_valid_number``.

    :param number: the number as typed or received
    :param str default_region: ISO 3166-1 alpha-2 region for national numbers
    :rtype: str | None
    """
    if number is None:
        return None
    text = _SCHEME_RE.sub("", str(number)).strip()
    if not text or not _ALLOWED_RE.match(text):
        return None
    digits = wa_digits(text)
    if not digits:
        return None
    if text.startswith("00"):
        text = "+" + digits[2:]
    region = default_region.upper() if default_region else None

    candidates = []
    if text.startswith("+"):
        candidates.append(_parse(text, None))
    else:
        if region:
            candidates.append(_parse(text, region))
        if len(digits) > 10:
            candidates.append(_parse("+" + digits, None))
    candidates = [c for c in candidates if c is not None]
    if not candidates:
        return None
    best = next((c for c in candidates if phonenumbers.is_valid_number(c)), candidates[0])
    return phonenumbers.format_number(best, phonenumbers.PhoneNumberFormat.E164)


def _br_local(digits):
    """Split a Brazilian ``55...`` number into ``(ddd, local)``, or ``None``."""
    if not digits.startswith("55") or len(digits) not in (12, 13):
        return None
    ddd, local = digits[2:4], digits[4:]
    # Area codes (DDD) are 11-99 and never contain a 0.
    if "0" in ddd:
        return None
    return ddd, local


def _br_with_nine(digits):
    """13-digit form of a Brazilian mobile, or ``None`` when not a mobile-looking number."""
    split = _br_local(digits)
    if not split:
        return None
    ddd, local = split
    # Mobile subscriber numbers start with 6-9 (8 digits) or 9 + that (9 digits); 2-5 are
    # landlines, which never gained the 9th digit.
    if len(local) == 8 and local[0] in "6789":
        return f"55{ddd}9{local}"
    if len(local) == 9 and local[0] == "9" and local[1] in "6789":
        return digits
    return None


def _ar_with_nine(digits):
    """``549...`` form of an Argentine number, or ``None``.

    The length tells the form, not a ``9`` after ``54``: 12 digits is ``54`` + the 10 national
    digits (which may themselves start with 9), 13 digits starting ``549`` has the 9 already.
    """
    if digits.startswith("549") and len(digits) == 13:
        return digits
    if digits.startswith("54") and len(digits) == 12:
        return f"549{digits[2:]}"
    return None


def variants(number):
    """Return the ``wa_id`` forms under which the same person may appear.

    Digits only, the given form first, without duplicates:

    * Brazil: ``55`` + DDD + 8 digits starting 6-9 and ``55`` + DDD + ``9`` + those 8 digits
      (accounts created before the 9th digit kept the old ``wa_id``, Chatwoot#5840);
      landlines (2-5) get no variant;
    * Argentina: ``549...`` (inbound ``wa_id``) and ``54...`` (how numbers are often written);
    * anything else: the number itself.

    :param number: E.164 number or ``wa_id`` (national formats are not understood here)
    :rtype: list[str]
    """
    digits = wa_digits(number)
    if not digits:
        return []
    result = [digits]
    with_nine = _br_with_nine(digits)
    if with_nine:
        result += [with_nine, with_nine[:4] + with_nine[5:]]
    else:
        ar = _ar_with_nine(digits)
        if ar:
            result += [ar, "54" + ar[3:]]
    return list(dict.fromkeys(result))


def canonical(number):
    """Return the one key that identifies a person across :func:`variants`.

    Brazil: the 13-digit form with the 9 (Chatwoot's canonical form); Argentina: the ``549``
    form; anything else: the digits.

    :rtype: str
    """
    digits = wa_digits(number)
    return _br_with_nine(digits) or _ar_with_nine(digits) or digits


def is_bsuid(value):
    """Tell whether ``value`` is a business-scoped user id (``CC.<1-128 alnum>``).

    Parent BSUIDs look like ``US.ENT.<alnum>``.

    :rtype: bool
    """
    return isinstance(value, str) and bool(_BSUID_RE.match(value))
