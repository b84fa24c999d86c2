"""Money: integer cents, percent rates as exact fractions, and the one rounding rule (half-up)."""

from __future__ import annotations

import functools
from fractions import Fraction


def parse_percent(text: str) -> Fraction:
    """'6.875' -> Fraction(6875, 100000): an exact rate (a fraction of 1). Raises ValueError."""
    if not isinstance(text, str):
        raise ValueError("give the rate as a string of percent, like \"6.875\"")
    body = text.strip()
    if not body or body.count(".") > 1 or not body.replace(".", "", 1).isdigit():
        raise ValueError(f"not a percentage: {text!r} (expected digits like \"6.875\")")
    rate = Fraction(body) / 100
    if rate >= 1:
        raise ValueError(f"rate {text}% is not below 100%")
    return rate


def round_half_up(value: Fraction) -> int:
    """Round to whole cents, halves away from zero (SST: up when the third decimal is > 4)."""
    if value >= 0:
        return int(value + Fraction(1, 2))
    return -round_half_up(-value)


def tax_on(taxable_cents: int, rate: Fraction) -> int:
    """Sales tax on an invoice's taxable total, rounded half-up to the cent (integer arithmetic:
    the same result as round_half_up(taxable_cents * rate), without building Fractions)."""
    if taxable_cents < 0:
        return -tax_on(-taxable_cents, rate)
    quotient, remainder = divmod(taxable_cents * rate.numerator, rate.denominator)
    return quotient + (2 * remainder >= rate.denominator)


def prorate(amount_cents: int, part: int, whole: int) -> int:
    """amount * part / whole, rounded half-up (used for rental days)."""
    if whole <= 0:
        raise ValueError("prorate over an empty whole")
    return round_half_up(Fraction(amount_cents * part, whole))


def fmt(cents: int) -> str:
    """12345 -> '$123.45'; -500 -> '-$5.00'."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


@functools.lru_cache(maxsize=256)
def rate_text(rate: Fraction) -> str:
    """Fraction(6875, 100000) -> '6.875%'."""
    percent = rate * 100
    whole = int(percent)
    rest = percent - whole
    digits = ""
    while rest and len(digits) < 6:
        rest *= 10
        digits += str(int(rest))
        rest -= int(rest)
    return f"{whole}.{digits}%" if digits else f"{whole}%"
