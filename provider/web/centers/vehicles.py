"""The vehicle an appointment works on: model year, make, model and VIN, validated.

A VIN (ISO 3779, North America) has 17 characters from 0-9 and A-Z without I, O and Q; its
ninth character is the check digit: each character's value (letters transliterated) times its
position's weight, summed, modulo 11 (10 written X)."""

from __future__ import annotations

from django.core.exceptions import ValidationError

_VALUES = {**{str(d): d for d in range(10)},
           **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
           **dict(zip("JKLMN", range(1, 6), strict=True)), "P": 7, "R": 9,
           **dict(zip("STUVWXYZ", range(2, 10), strict=True))}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
FIRST_YEAR = 1981  # the 17-character VIN with a check digit


def vin_check_digit(vin: str) -> str:
    total = sum(_VALUES[c] * w for c, w in zip(vin, _WEIGHTS, strict=True))
    r = total % 11
    return "X" if r == 10 else str(r)


def clean_vin(text: str) -> str:
    """The VIN in upper case, or ValidationError with the one thing wrong with it."""
    vin = (text or "").strip().upper()
    if len(vin) != 17:
        raise ValidationError(f"A VIN has 17 characters (this one has {len(vin)}).")
    bad = sorted({c for c in vin if c not in _VALUES})
    if bad:
        raise ValidationError("A VIN uses 0-9 and A-Z except I, O and Q (not "
                              + ", ".join(repr(c) for c in bad) + ").")
    expected = vin_check_digit(vin)
    if vin[8] != expected:
        raise ValidationError(f"This VIN's check digit (9th character) should be {expected}: "
                              "check it was copied right.")
    return vin


def clean_year(year: int, this_year: int) -> int:
    if not FIRST_YEAR <= year <= this_year + 1:
        raise ValidationError(f"The model year must be from {FIRST_YEAR} to {this_year + 1}.")
    return year
