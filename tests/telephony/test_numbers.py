"""Request-URI user parts for each number format, per country."""

from __future__ import annotations

import pytest

from atende.telephony.numbers import NumberError, format_for_trunk, number_country


@pytest.mark.parametrize(
    ("number", "country", "intl_plus", "intl_no_plus", "national"),
    [
        ("+1 202-555-0123", "US", "+12025550123", "12025550123", "2025550123"),
        ("(202) 555-0123", "US", "+12025550123", "12025550123", "2025550123"),
        # Brazil dials long distance with a carrier code, so its national form is
        # area code + number, without a trunk prefix.
        ("+55 11 98765-4321", "BR", "+5511987654321", "5511987654321", "11987654321"),
        ("(11) 3265-4321", "BR", "+551132654321", "551132654321", "1132654321"),
        ("+351 912 345 678", "PT", "+351912345678", "351912345678", "912345678"),
        ("912345678", "PT", "+351912345678", "351912345678", "912345678"),
        ("+44 7911 123456", "GB", "+447911123456", "447911123456", "07911123456"),
        ("0741 926 265", "RO", "+40741926265", "40741926265", "0741926265"),  # the seed's
        ("020 7946 0958", "GB", "+442079460958", "442079460958", "02079460958"),
    ],
)
def test_formats(number: str, country: str, intl_plus: str, intl_no_plus: str,
                 national: str) -> None:
    assert format_for_trunk(number, country, "intl_plus") == intl_plus
    assert format_for_trunk(number, country, "intl_no_plus") == intl_no_plus
    assert format_for_trunk(number, country, "national") == national


def test_foreign_numbers_stay_international_on_a_national_trunk() -> None:
    assert format_for_trunk("+351912345678", "BR", "national") == "+351912345678"


def test_country_of_a_number() -> None:
    assert number_country("+351912345678", "US") == "PT"
    assert number_country("2025550123", "US") == "US"


@pytest.mark.parametrize("bad", ["hello", "12", "+999 1234", ""])
def test_bad_numbers(bad: str) -> None:
    with pytest.raises(NumberError):
        format_for_trunk(bad, "US", "intl_plus")
