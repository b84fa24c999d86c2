"""The attack table at the Authority level, in bytes, both runtimes: a bit flip in every
byte (in every field under MicroPython, whose pure-Python signature checks are slow),
truncation at every length, garbage of every kind, signed content that does not decode.
"""

import sys

from protocol import errors
from tests.firmware.authority_fixtures import (
    NONCE,
    outcome,
    token,
)


# ---- bit flips and truncation ------------------------------------------------------------------
def _head_spans(data):
    """(start, end, expected codes) of the fields up to the end of the certificate."""
    at = 4 + 8 + 1 + data[12]  # magic version kind, root id, key id
    c = at + 2  # the certificate's first byte
    k = c + 5 + data[c + 4]  # after the certificate's key id
    out = [(0, 4, (errors.MALFORMED_TOKEN,))]
    out.append((4, 12, (errors.UNKNOWN_KEY,)))
    out.append((12, 13, None))
    out.append((13, at, (errors.BAD_DELEGATION,)))  # key id no longer the certificate's
    out.append((at, c, None))
    out.append((c, c + 4, (errors.MALFORMED_TOKEN,)))
    out.append((c + 4, c + 5, None))
    out.append((c + 5, k, (errors.BAD_DELEGATION,)))
    out.append((k, k + 32, (errors.BAD_DELEGATION,)))  # public key
    out.append((k + 32, k + 33, (errors.BAD_DELEGATION, errors.MALFORMED_TOKEN)))  # scopes
    c += data[at] | data[at + 1] << 8
    out.append((k + 33, c, (errors.BAD_DELEGATION,)))  # times, root signature
    return out


def _tail_spans(data, s):
    """The fields from the serial's length byte `s` on."""
    out = [(s, s + 1, None)]
    a = s + 1 + data[s]  # the action's length byte
    out.append((s + 1, a, (errors.BAD_SIGNATURE,)))
    out.append((a, a + 1, None))
    s = a + 1 + data[a]  # the args' length (u16)
    out.append((a + 1, s, (errors.BAD_SIGNATURE,)))
    out.append((s, s + 2, None))
    a = len(data) - 64 - 1 - 16  # the session nonce's length byte
    out.append((s + 2, a, (errors.BAD_SIGNATURE,)))  # args, times, token id
    out.append((a, a + 1, None))
    out.append((a + 1, len(data), (errors.BAD_SIGNATURE,)))  # nonce, signature
    return out


def _spans(data):
    """(start, end, expected codes) of every field of a delegated, session-bound token."""
    head = _head_spans(data)
    return head + _tail_spans(data, head[len(head) - 1][1])


# flips in length prefixes shift every later field: refused, with whatever check fails first
_LENGTH_CODES = (errors.MALFORMED_TOKEN, errors.BAD_SIGNATURE, errors.BAD_DELEGATION, errors.UNKNOWN_KEY)


def _flip_refused(data, i, expected):
    flipped = bytearray(data)
    flipped[i] ^= 1 << (i % 8)
    code = outcome(bytes(flipped), nonce=NONCE)
    return code is not None and code in (expected or _LENGTH_CODES)


# every byte under CPython; under MicroPython the first and the last byte of every field
# (its verifications are slow and its test VM must not collect: see the module docstring)
EVERY_BYTE = sys.implementation.name != "micropython"


def _span_refused(data, span):
    i = span[0]
    while i < span[1]:
        if not _flip_refused(data, i, span[2]):
            return i
        if EVERY_BYTE or i + 1 == span[1]:
            i += 1
        else:
            i = span[1] - 1
    return None


def _all_flips_refused(data):
    spans = _spans(data)
    i = 0
    while i < len(spans):
        bad = _span_refused(data, spans[i])
        if bad is not None:
            return bad
        i += 1
    return None


def test_bit_flip_in_every_byte_is_refused():
    # (every field under MicroPython: EVERY_BYTE)
    # a delegated, session-bound token: every field of the token and its certificate
    data = token({"key": "field-02", "action": "service", "args": b"{}", "nonce": NONCE})
    assert outcome(data, nonce=NONCE) is None
    assert _all_flips_refused(data) is None


def _contiguous_end(spans):
    end = 0
    i = 0
    while i < len(spans):
        if spans[i][0] != end or spans[i][1] <= end:
            return -1
        end = spans[i][1]
        i += 1
    return end


def test_bit_flips_cover_every_byte():
    data = token({"key": "field-02", "action": "service", "args": b"{}", "nonce": NONCE})
    assert _contiguous_end(_spans(data)) == len(data)


def _prefixes_malformed(data):
    n = 0
    while n < len(data):
        if outcome(data[:n]) != errors.MALFORMED_TOKEN:
            return n
        n += 1
    return None


def test_truncation_and_extension_are_malformed():
    data = token({"key": "field-02"})
    assert _prefixes_malformed(data) is None
    assert outcome(data + b"\x00") == errors.MALFORMED_TOKEN
    assert outcome(data + data) == errors.MALFORMED_TOKEN


# ---- malformed input of every kind ------------------------------------------------------------
def _garbage(n, seed):
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = x >> 16 & 0xFF
    return bytes(out)


def test_garbage_is_malformed_never_an_exception():
    for value in (b"", b"L7", b"L7\x01\x01", None, 12, "a token", [1, 2]):
        assert outcome(value) == errors.MALFORMED_TOKEN, value
    for n in (1, 17, 100, 300, 510):
        assert outcome(_garbage(n, n)) == errors.MALFORMED_TOKEN, n
    assert outcome(bytes(511)) == errors.MALFORMED_TOKEN  # over the wire limit
    assert outcome(b"L7\x02\x01" + bytes(200)) == errors.MALFORMED_TOKEN  # another version
    assert outcome(b"L7\x01\x02" + bytes(200)) == errors.MALFORMED_TOKEN  # a certificate


def test_session_nonce_of_a_wrong_length_is_malformed():
    assert outcome(token({"nonce": b"N" * 8}), nonce=NONCE) == errors.MALFORMED_TOKEN


def test_signed_but_undecodable_content_is_refused():
    # what only a signer could produce still never escapes as an exception
    assert outcome(token({"args": b"[1,2]"})) == errors.MALFORMED_TOKEN
    assert outcome(token({"args": b"{not json"})) == errors.MALFORMED_TOKEN
    assert outcome(token({"args": b'{"seconds":"\xff"}'})) == errors.MALFORMED_TOKEN
    assert outcome(token({"action": b"\xc3"})) == errors.MALFORMED_TOKEN  # not UTF-8
    assert outcome(token({"serial": b"LCI-\xff"})) == errors.MALFORMED_TOKEN
    assert outcome(token({"action": "self_destruct", "args": b"{}"})) == errors.NOT_SUPPORTED
    assert outcome(token({"args": b'{"seconds":-1}'})) == errors.BAD_ARGUMENT
    assert outcome(token({"args": b'{"seconds":true}'})) == errors.BAD_ARGUMENT
    assert outcome(token({"args": b'{"seconds":1,"extra":2}'})) == errors.BAD_ARGUMENT
    assert outcome(token({"args": b"{}"})) == errors.BAD_ARGUMENT
    assert outcome(token({"action": "work_order", "args": b'{"id":"1","order":"steal","vehicle":""}'})) == errors.BAD_ARGUMENT
