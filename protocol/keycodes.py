"""Keypad codes: request codes and the provider's answer (HMAC-SHA256 + RFC 4226).

A client on the phone reads the request code from the handset; the provider's tool
(host_tools/codes.py) answers with a numeric code that the client types in. Both sides
compute with this module (MicroPython and CPython):

    request = request_code(serial, action, counter, nonce)       "1042 3718 2296"
    key = CodeKey(secret, serial)                                 (digits=8)
    code = key.answer(request, action, seq=None)                  "39517204"
    key.check(request, code, action, seq=None) -> bool            constant-time compare
    (seq: for "clear", the directive number of the lockout the code answers; required)
    answer_code(...) / check_code(...)                            the same, as functions

The request is 12 digits: the action's digit (its index in protocol.messages.ACTIONS), the
request counter mod 1000 (3 digits), 7 digits of SHA-256 over the serial, the full counter
and the device's random nonce, and a Damm check digit (catches every single-digit error
and every swap of adjacent digits when the client reads it aloud).

The answer is HMAC-SHA256(secret, "LCI-777 code v1" 0 serial 0 action 0 request digits),
with, for a `clear` code, 0 and the decimal directive number of the lockout it answers
appended (so a clear code works only in that lockout), truncated as in RFC 4226 section 5.3
(dynamic offset from the low nibble of the last byte, 31 bits) and reduced mod 10^digits
(8 digits by default). `secret` is the device's keypad
secret, HKDF-SHA256(master, info=serial) on the provider's side (host_tools/keys.py).

Policy (single use, the override window, the attempt back-off) belongs to the core:
firmware/keypad.py (the back-off schedule) and firmware/override.py.
"""

try:
    from micropython import const
except ImportError:  # CPython: the value itself
    const = int  # type: ignore[misc, assignment]

from hashlib import sha256

from protocol.compare import equal
from protocol.messages import ACTIONS, CODE_ACTIONS, CODE_DIGITS  # noqa: F401 (the codes' names, here too)

REQUEST_DIGITS = 12
DOMAIN = b"LCI-777 code v1"

_BLOCK = const(64)
# Damm's quasigroup of order 10 (weakly totally anti-symmetric)
_DAMM = (
    b"\x00\x03\x01\x07\x05\x09\x08\x06\x04\x02",
    b"\x07\x00\x09\x02\x01\x05\x04\x08\x06\x03",
    b"\x04\x02\x00\x06\x08\x07\x01\x03\x05\x09",
    b"\x01\x07\x05\x00\x09\x08\x03\x04\x02\x06",
    b"\x06\x01\x02\x03\x00\x04\x05\x09\x07\x08",
    b"\x03\x06\x07\x04\x02\x00\x09\x05\x08\x01",
    b"\x05\x08\x06\x09\x07\x02\x00\x01\x03\x04",
    b"\x08\x09\x04\x05\x03\x06\x02\x00\x01\x07",
    b"\x09\x04\x03\x08\x06\x01\x07\x02\x00\x05",
    b"\x02\x05\x08\x01\x04\x03\x06\x07\x09\x00",
)


# ---- primitives --------------------------------------------------------------------------
def _xor_pad(key, pad):
    out = bytearray(_BLOCK)
    for i in range(_BLOCK):
        out[i] = key[i] ^ pad
    return bytes(out)


def hmac_sha256(key, message):
    """HMAC-SHA256 (RFC 2104) of `message` under `key`: 32 bytes."""
    key = bytes(key)
    if len(key) > _BLOCK:
        key = sha256(key).digest()
    key = key + bytes(_BLOCK - len(key))
    inner = sha256(_xor_pad(key, 0x36) + bytes(message)).digest()
    return sha256(_xor_pad(key, 0x5C) + inner).digest()


def truncate(digest):
    """RFC 4226 section 5.3 dynamic truncation: a 31-bit integer from an HMAC value."""
    offset = digest[len(digest) - 1] & 0x0F
    return (
        ((digest[offset] & 0x7F) << 24)
        | (digest[offset + 1] << 16)
        | (digest[offset + 2] << 8)
        | digest[offset + 3]
    )


def damm(digits):
    """The Damm check digit of a string of decimal digits (0 when appended makes it valid)."""
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][ord(ch) - 48]
    return interim


def _zero_padded(value, width):
    text = str(value)
    return "0" * (width - len(text)) + text


def normalize(text):
    """The digits of a code or request as typed or read (spaces and dashes dropped), or None."""
    if not isinstance(text, str):
        return None
    out = ""
    for ch in text:
        if "0" <= ch <= "9":
            out += ch
        elif ch not in " -":
            return None
    return out


def group(digits, size=4):
    """Digits in groups for reading aloud: "104237182296" -> "1042 3718 2296"."""
    out = digits[:size]
    i = size
    while i < len(digits):
        out += " " + digits[i : i + size]
        i += size
    return out


# ---- request and answer ------------------------------------------------------------------
def action_digit(action):
    """The request's first digit for a code action (ValueError if no code carries it)."""
    if action not in CODE_ACTIONS:
        raise ValueError("no keypad code for action %r (codes: %s)" % (action, ", ".join(CODE_ACTIONS)))
    return ACTIONS.index(action)


def _nonce_bytes(nonce):
    if isinstance(nonce, int):
        if nonce < 0:
            raise ValueError("a nonce is not negative")
        return str(nonce).encode()
    return bytes(nonce)


def _request_mix(serial, counter, nonce):
    """7 digits of SHA-256 over the serial, the full counter and the nonce."""
    data = b"LCI-777 request\x00" + serial.encode() + b"\x00" + str(counter).encode()
    mix = sha256(data + b"\x00" + _nonce_bytes(nonce)).digest()
    return _zero_padded(int.from_bytes(mix[:8], "big") % 10000000, 7)


def request_code(serial, action, counter, nonce):
    """The request code the handset shows (12 digits in three groups of four)."""
    if type(counter) is not int or counter < 0:
        raise ValueError("the request counter is an integer >= 0")
    body = str(action_digit(action)) + _zero_padded(counter % 1000, 3)
    body += _request_mix(serial, counter, nonce)
    return group(body + str(damm(body)))


def parse_request(request, action=None):
    """The 12 digits of a request as read aloud, checked: ValueError with what is wrong.

    Checks the length, the Damm check digit and, if `action` is given, that the request was
    issued for that action."""
    digits = normalize(request)
    if digits is None or len(digits) != REQUEST_DIGITS:
        raise ValueError("a request code is %d digits" % REQUEST_DIGITS)
    if damm(digits) != 0:
        raise ValueError("request code misread: its check digit does not match")
    if action is not None and digits[0] != str(action_digit(action)):
        raise ValueError("this request code was issued for %r, not %r" % (ACTIONS[int(digits[0])], action))
    return digits


def _request_for(request, action):
    """The request's digits if it is well formed and issued for `action`, else None."""
    digits = normalize(request)
    if digits is None or len(digits) != REQUEST_DIGITS or damm(digits) != 0:
        return None
    if action not in CODE_ACTIONS or digits[0] != str(ACTIONS.index(action)):
        return None
    return digits


class CodeKey:
    """One device's code key: its keypad secret and serial, and the code length."""

    def __init__(self, secret, serial, digits=CODE_DIGITS):
        self.secret = bytes(secret)
        self.prefix = DOMAIN + b"\x00" + serial.encode() + b"\x00"
        self.digits = digits

    def _answer(self, request_digits, action, seq):
        data = self.prefix + action.encode() + b"\x00" + request_digits.encode()
        if action == "clear":
            data += b"\x00" + str(seq).encode()
        value = truncate(hmac_sha256(self.secret, data)) % (10**self.digits)
        return _zero_padded(value, self.digits)

    def answer(self, request, action, seq=None):
        """The answer to `request` for `action`; ValueError if the request is not valid for it
        (or a clear code is asked for without the directive number of its lockout)."""
        digits = parse_request(request, action)
        if not _seq_fits(action, seq):
            raise ValueError("a clear code answers one lockout: give its directive number (an integer >= 0)")
        return self._answer(digits, action, seq)

    def check(self, request, code, action, seq=None):
        """True if `code` answers `request` for `action` (constant-time); never raises."""
        expected = self._expected(request, action, seq)
        return expected is not None and _same_code(code, expected)

    def _expected(self, request, action, seq):
        """The answer the device expects, or None when the request or binding is invalid."""
        digits = _request_for(request, action)
        if digits is None or not _seq_fits(action, seq):
            return None
        return self._answer(digits, action, seq)


def _same_code(code, expected):
    code = normalize(code)
    return code is not None and len(code) == len(expected) and equal(code.encode(), expected.encode())


def _seq_fits(action, seq):
    """A clear code names its lockout's directive number; an unlock code names none."""
    if action != "clear":
        return seq is None
    return type(seq) is int and seq >= 0


def answer_code(secret, serial, request, action, digits=CODE_DIGITS, seq=None):
    """The provider's answer to `request` for `action` (a string of `digits` digits)."""
    return CodeKey(secret, serial, digits).answer(request, action, seq)


def check_code(secret, serial, request, code, action, digits=CODE_DIGITS):
    """True if `code` is the answer to `request` for `action`; never raises on bad input.
    (A clear code names its lockout: check it with CodeKey(...).check(..., seq).)"""
    return CodeKey(secret, serial, digits).check(request, code, action)
