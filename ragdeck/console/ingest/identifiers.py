"""Numbers that identify a person or an account, found only when their checksum or rules hold, so that
ordinary numbers (dates, order numbers, phone-like ids, versions) stay: the redactor's CARD, IBAN and
NATIONAL_ID kinds.

- CARD: payment card numbers, 13-19 digits bare or grouped by single spaces or dashes (4-4-4-4, 4-6-5,
  4-4-4-4-3), with a known issuer prefix (Visa, Mastercard, Amex, Discover, JCB, Diners) and a valid Luhn
  check digit.
- IBAN: two letters, two check digits and the account, bare or in groups of four, with the length its
  country uses and ISO 7064 mod-97 equal to 1.
- NATIONAL_ID: US social security numbers written ``AAA-GG-SSSS`` (area not 000, 666 or 900-999, group not
  00, serial not 0000, nor the published sample numbers); UK National Insurance numbers (``QQ 12 34 56 C``,
  valid prefix letters); Spanish DNI / NIE (8 digits, or X/Y/Z and 7, with the mod-23 control letter);
  Canadian social insurance numbers written ``123-456-782`` or ``123 456 782`` (Luhn, first digit not 0 or 8).
"""

from __future__ import annotations

import re

__all__ = ["CARD", "IBAN", "NATIONAL_ID", "card", "iban", "national_id"]

_EDGE_BEFORE = r"(?<![\w.+/:=-])"
_EDGE_AFTER = r"(?![\w-]|[.,/:]\d)"

CARD = re.compile(
    _EDGE_BEFORE
    + r"""(?:\d{13,19}
      | \d{4}(?P<s1>[ -])\d{4}(?P=s1)\d{4}(?P=s1)\d{1,4}(?:(?P=s1)\d{3})?
      | \d{4}(?P<s2>[ -])\d{6}(?P=s2)\d{4,5})"""
    + _EDGE_AFTER,
    re.VERBOSE,
)
_CARD_PREFIX = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}"  # Visa: 13, 16 or 19 digits
    r"|(?:5[1-5]\d\d|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720)\d{12}"  # Mastercard
    r"|3[47]\d{13}"  # American Express
    r"|(?:6011|65\d\d|64[4-9]\d)\d{12,15}"  # Discover
    r"|35(?:2[89]|[3-8]\d)\d{12,15}"  # JCB
    r"|3(?:0[0-5]|[68]\d)\d{11,16})$"  # Diners Club
)

IBAN = re.compile(r"(?<![\w-])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![\w-])")
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CY": 28,
    "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GI": 23,
    "GL": 18, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "KW": 30, "KZ": 20,
    "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MT": 31,
    "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "XK": 20,
}  # fmt: skip

NATIONAL_ID = re.compile(
    r"""(?x)(?<![\w.+/:=-])(?:
        (?P<ssn>\d{3}-\d{2}-\d{4})
      | (?P<nino>[A-Z]{2}[ ]?\d{2}[ ]?\d{2}[ ]?\d{2}[ ]?[A-D])
      | (?P<dni>[XYZ]?\d{7,8}-?[A-Z])
      | (?P<sin>\d{3}(?P<sep>[ -])\d{3}(?P=sep)\d{3})
    )(?![\w-]|[.,/:]\d)"""
)
_SSN_SAMPLES = {"078-05-1120", "219-09-9999", "123-45-6789"}
_NINO_FIRST, _NINO_SECOND = set("ABCEGHJKLMNOPRSTWXYZ"), set("ABCEGHJKLMNPRSTWXYZ")
_NINO_NEVER = {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def luhn(digits: str) -> bool:
    """True when ``digits`` pass the Luhn check (card numbers, Canadian SINs)."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def card(match: re.Match[str]) -> str | None:
    """``[CARD]`` for a card number (grouped as ``CARD`` allows), an issuer prefix and a valid Luhn digit."""
    digits = re.sub(r"\D", "", match.group(0))
    return "[CARD]" if _CARD_PREFIX.match(digits) and luhn(digits) else None


def iban(match: re.Match[str]) -> str | None:
    """``[IBAN]`` for an IBAN of its country's length whose mod-97 check holds (a group of digits that
    follows it, "… 7654 32 1234", is kept)."""
    text = match.group(0)
    length = _IBAN_LENGTHS.get(text[:2])
    if length is None:
        return None
    taken, end = 0, 0
    while end < len(text) and taken < length:
        taken += text[end] != " "
        end += 1
    head, rest = text[:end], text[end:]
    if taken != length or (rest and not rest.startswith(" ")):
        return None
    if " " in head and any(len(g) != 4 for g in head.split(" ")[:-1]):
        return None
    compact = head.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return "[IBAN]" + rest if int(number) % 97 == 1 else None


def national_id(match: re.Match[str]) -> str | None:
    """``[NATIONAL_ID]`` for a US SSN, UK NI number, Spanish DNI / NIE or Canadian SIN that is valid."""
    if ssn := match.group("ssn"):
        area, group, serial = ssn.split("-")
        valid = area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"
        return "[NATIONAL_ID]" if valid and ssn not in _SSN_SAMPLES else None
    if nino := match.group("nino"):
        compact = nino.replace(" ", "")
        if len(nino) not in (9, 13):
            return None  # all spaces or none: "AB 12 34 56 C" / "AB123456C"
        prefix = compact[:2]
        valid = prefix[0] in _NINO_FIRST and prefix[1] in _NINO_SECOND and prefix not in _NINO_NEVER
        return "[NATIONAL_ID]" if valid else None
    if dni := match.group("dni"):
        compact = dni.replace("-", "")
        body, letter = compact[:-1], compact[-1]
        if body[0] in "XYZ":
            body = str("XYZ".index(body[0])) + body[1:]
            if len(body) != 8:
                return None
        elif len(body) != 8:
            return None
        return "[NATIONAL_ID]" if _DNI_LETTERS[int(body) % 23] == letter else None
    sin = re.sub(r"\D", "", match.group("sin"))
    return "[NATIONAL_ID]" if sin[0] not in "08" and luhn(sin) else None
