"""Constant-time comparison of byte strings (keypad codes, session nonces), both sides.

    equal(a, b) -> bool      the time depends on the lengths only, never on where they differ
"""


def equal(a, b):
    """Constant-time equality of two byte strings (the time depends on the length only)."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0
