"""The brief's words and numbers: ordinals, counts, rounding, dates."""

from __future__ import annotations

from datetime import date

import pytest

from capspread.brief import fmt_date, fmt_number, fmt_pct, fmt_points, join_words, number_word, ordinal_word


@pytest.mark.parametrize(
    "n, word",
    [(1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (8, "eighth"), (9, "ninth"), (10, "tenth"),
     (11, "11th"), (12, "12th"), (13, "13th"), (21, "21st"), (22, "22nd"), (23, "23rd"), (101, "101st"),
     (111, "111th"), (112, "112th")],
)
def test_ordinals_are_words_up_to_ten(n, word):
    assert ordinal_word(n) == word


def test_counts_are_words_up_to_ten():
    assert [number_word(n) for n in (0, 1, 7, 10)] == ["zero", "one", "seven", "ten"]
    assert number_word(11) == "11" and number_word(1500) == "1,500"


@pytest.mark.parametrize(
    "fraction, text",
    [
        (0.008164280491547604, "0.8%"),
        (-0.03317342, "3.3%"),  # the sign is told in words
        (0.0015, "0.2%"),  # half up; Python's format gives 0.1 (0.15 is 0.1499... in binary)
        (-0.0015, "0.2%"),
        (0.00125, "0.1%"),
        (0.0025, "0.3%"),
        (0.0344, "3.4%"),
        (0.1, "10.0%"),
        (0.99951, "100.0%"),
        (0.0, "0.0%"),
        (0.0004, "less than 0.1%"),
        (-0.00049, "less than 0.1%"),
        (0.0005, "0.1%"),
    ],
)
def test_percentages_have_one_decimal_rounded_half_up(fraction, text):
    assert fmt_pct(fraction) == text


def test_percentage_points_and_levels():
    assert fmt_points(0.00446) == "0.4 percentage points"
    assert fmt_points(-0.01) == "1.0 percentage point"
    assert fmt_points(0.0001) == "less than 0.1 percentage point"
    assert fmt_number(6012.285) == "6,012.29"
    assert fmt_number(612.93) == "612.93"
    assert fmt_number(20.45, 1) == "20.5"


def test_dates_and_lists():
    assert fmt_date(date(2025, 2, 19)) == "February 19, 2025"
    assert join_words(["QQQ"]) == "QQQ"
    assert join_words(["QQQ", "SPY"]) == "QQQ and SPY"
    assert join_words(["QQQ", "SPY", "DIA"]) == "QQQ, SPY and DIA"
