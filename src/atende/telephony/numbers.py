"""Phone numbers as trunks want them in the Request-URI.

Three formats, as the trunk settings name them:
- ``intl_plus``: E.164 with the plus, ``sip:+12025550123@host``;
- ``intl_no_plus``: E.164 digits without the plus, ``sip:12025550123@host``;
- ``national``: the national dialling form with its trunk prefix where the country has one
  (``sip:0741926265@host`` in Romania, ``07911123456`` in the UK; Brazil's is area code +
  number, as long-distance calls there need a carrier code).
Input may be written any way a person would (spaces, dashes, national or international);
the trunk's country says how to read a number without a country code.
"""

from __future__ import annotations

from enum import StrEnum

import phonenumbers


class NumberFormat(StrEnum):
    """How a trunk writes numbers: +E.164, E.164 without +, or national."""

    INTL_PLUS = "intl_plus"
    INTL_NO_PLUS = "intl_no_plus"
    NATIONAL = "national"


class NumberError(ValueError):
    """A number that cannot be read or written as asked."""

    pass


def parse_number(number: str, country: str) -> phonenumbers.PhoneNumber:
    try:
        parsed = phonenumbers.parse(number, country.upper())
    except phonenumbers.NumberParseException as exc:
        raise NumberError(f"{number!r} is not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise NumberError(f"{number!r} is not a possible number for {country.upper()}")
    return parsed


def number_country(number: str, country: str) -> str | None:
    """ISO 3166 alpha-2 region of a number (for toll-fraud checks and time zones)."""
    return phonenumbers.region_code_for_number(parse_number(number, country))


def format_for_trunk(number: str, country: str, fmt: NumberFormat | str) -> str:
    """The user part to dial ``number`` through a trunk in ``country`` with format ``fmt``."""
    parsed = parse_number(number, country)
    fmt = NumberFormat(fmt)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if fmt == NumberFormat.INTL_PLUS:
        return e164
    if fmt == NumberFormat.INTL_NO_PLUS:
        return e164[1:]
    if parsed.country_code != phonenumbers.country_code_for_region(country.upper()):
        # A foreign number cannot be written nationally: international dialling is needed.
        # (Compare calling codes, not regions: +44 covers the UK and the Crown Dependencies.)
        return e164
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return "".join(ch for ch in national if ch.isdigit())
