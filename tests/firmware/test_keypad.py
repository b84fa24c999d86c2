"""Keypad codes (firmware/keypad.py): HMAC-SHA256, RFC 4226 truncation, requests, answers.

Dual-runtime. MicroPython has no hashlib.sha1, so RFC 4226 Appendix D is checked through
its intermediate values: the HMAC-SHA-1 outputs are copied from the appendix and
truncate() must give its "Decimal" column (under CPython the HMAC-SHA-1 values are also
recomputed with the standard library). The golden request/answer vector was computed
with CPython's hmac and hashlib from the algorithm in protocol/SPEC.md section 9.
"""

from binascii import unhexlify

from firmware import keypad
from tests.dualtest import raises

# RFC 4231 section 4: (key, data, HMAC-SHA-256); test case 5 is truncated to 128 bits
RFC4231 = (
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (
        b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19",
        b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data."
        b" The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
)

# RFC 4226 Appendix D: secret "12345678901234567890", counts 0..9:
# (HMAC-SHA-1(secret, count), truncated decimal, 6-digit HOTP)
RFC4226 = (
    ("cc93cf18508d94934c64b65d8ba7667fb7cde4b0", 1284755224, "755224"),
    ("75a48a19d4cbe100644e8ac1397eea747a2d33ab", 1094287082, "287082"),
    ("0bacb7fa082fef30782211938bc1c5e70416ff44", 137359152, "359152"),
    ("66c28227d03a2d5529262ff016a1e6ef76557ece", 1726969429, "969429"),
    ("a904c900a64b35909874b33e61c5938a8e15ed1c", 1640338314, "338314"),
    ("a37e783d7b7233c083d4f62926c7a25f238d0316", 868254676, "254676"),
    ("bc9cd28561042c83f219324d3c607256c03272ae", 1918287922, "287922"),
    ("a4fb960c0bc06e1eabb804e5b397cdc4b45596fa", 82162583, "162583"),
    ("1b3c89f65e6c9e883012052823443f048b4332db", 673399871, "399871"),
    ("1637409809a679dc698207310c8c7fc07290d9e5", 645520489, "520489"),
)

# golden vector (see the module docstring)
SERIAL = "LCI-0001"
SECRET = bytes(range(32))
NONCE = b"\x01\x02\x03\x04\x05\x06\x07\x08"
GOLDEN = (
    ("unlock", "1042 6219 0466", "51360921"),
    ("clear", "7042 6219 0460", "22994227"),  # for the lockout of directive number 1
)
GOLDEN_SEQ = (None, 1)


def _hmac_case(i):
    case = RFC4231[i]
    expected = unhexlify(case[2])
    return keypad.hmac_sha256(case[0], case[1])[: len(expected)] == expected


def test_hmac_sha256_rfc4231():
    for i in range(len(RFC4231)):
        assert _hmac_case(i), i + 1


def _truncation_case(i):
    row = RFC4226[i]
    value = keypad.truncate(unhexlify(row[0]))
    return value == row[1] and "%06d" % (value % 1000000) == row[2]


def test_truncation_rfc4226_appendix_d():
    for i in range(len(RFC4226)):
        assert _truncation_case(i), i


def test_rfc4226_intermediate_values_are_hmac_sha1_where_available():
    try:
        import hashlib
        import hmac
    except ImportError:
        return  # MicroPython: no hmac module and no sha1; the RFC's values stand
    for count in range(10):
        digest = hmac.new(b"12345678901234567890", count.to_bytes(8, "big"), hashlib.sha1).digest()
        assert digest == unhexlify(RFC4226[count][0])


def test_truncation_uses_the_low_nibble_of_the_last_byte_as_offset():
    digest = bytearray(32)
    digest[31] = 0x0C  # offset 12
    digest[12] = 0xFF  # the top bit is masked off
    digest[13] = 0x01
    digest[14] = 0x02
    digest[15] = 0x03
    assert keypad.truncate(bytes(digest)) == 0x7F010203
    digest[31] = 0x00
    assert keypad.truncate(bytes(digest)) == 0


def test_equal():
    assert keypad.equal(b"", b"")
    assert keypad.equal(b"51360921", b"51360921")
    assert not keypad.equal(b"51360921", b"51360922")
    assert not keypad.equal(b"51360921", b"61360921")
    assert not keypad.equal(b"5136092", b"51360921")
    assert keypad.equal(bytearray(b"ab"), b"ab")


def test_damm_check_digit():
    assert keypad.damm("572") == 4  # the textbook example
    assert keypad.damm("5724") == 0
    assert keypad.damm("") == 0


def _substitutions_caught(digits):
    i = 0
    while i < len(digits):
        for d in "0123456789":
            if d != digits[i] and keypad.damm(digits[:i] + d + digits[i + 1 :]) == 0:
                return False
        i += 1
    return True


def _transpositions_caught(digits):
    i = 0
    while i + 1 < len(digits):
        swapped = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
        if swapped != digits and keypad.damm(swapped) == 0:
            return False
        i += 1
    return True


def test_misread_requests_are_caught_by_the_check_digit():
    digits = keypad.normalize(keypad.request_code(SERIAL, "unlock", 42, NONCE))
    assert keypad.damm(digits) == 0
    assert _substitutions_caught(digits)
    assert _transpositions_caught(digits)


def test_request_code_format():
    request = keypad.request_code(SERIAL, "unlock", 42, NONCE)
    assert len(request) == 14
    assert request[4] == " " and request[9] == " "
    digits = keypad.normalize(request)
    assert len(digits) == 12 and digits.isdigit()
    assert digits[0] == "1"  # protocol.messages.ACTIONS.index("unlock")
    assert digits[1:4] == "042"  # the counter mod 1000
    assert keypad.normalize(keypad.request_code(SERIAL, "clear", 1042, NONCE))[:4] == "7042"


def test_request_code_depends_on_serial_counter_and_nonce():
    base = keypad.request_code(SERIAL, "unlock", 42, NONCE)
    assert keypad.request_code(SERIAL, "unlock", 42, NONCE) == base
    assert keypad.request_code("LCI-0002", "unlock", 42, NONCE) != base
    assert keypad.request_code(SERIAL, "unlock", 43, NONCE) != base
    assert keypad.request_code(SERIAL, "unlock", 42, b"\x01\x02\x03\x04\x05\x06\x07\x09") != base
    # counters 1000 apart share the visible digits, not the rest
    assert keypad.request_code(SERIAL, "unlock", 1042, NONCE) != base
    assert keypad.request_code(SERIAL, "unlock", 42, 123456) != keypad.request_code(SERIAL, "unlock", 42, 123457)


def test_request_code_refuses_bad_input():
    raises(ValueError, keypad.request_code, SERIAL, "service", 1, NONCE)
    raises(ValueError, keypad.request_code, SERIAL, "unlock", -1, NONCE)
    raises(ValueError, keypad.request_code, SERIAL, "unlock", "1", NONCE)


def _golden(i):
    action = GOLDEN[i][0]
    request = keypad.request_code(SERIAL, action, 42, NONCE)
    answer = keypad.answer_code(SECRET, SERIAL, request, action, seq=GOLDEN_SEQ[i])
    return request == GOLDEN[i][1] and answer == GOLDEN[i][2]


def test_a_clear_code_is_bound_to_its_lockout():
    key = keypad.CodeKey(SECRET, SERIAL)
    request = GOLDEN[1][1]
    assert key.check(request, GOLDEN[1][2], "clear", 1)
    assert not key.check(request, GOLDEN[1][2], "clear", 2)  # another lockout
    assert not key.check(request, GOLDEN[1][2], "clear")  # no lockout named: never
    assert key.answer(request, "clear", 2) != GOLDEN[1][2]
    raises(ValueError, key.answer, request, "clear")
    raises(ValueError, keypad.answer_code, SECRET, SERIAL, GOLDEN[0][1], "unlock", 8, 1)


def test_golden_vector():
    assert _golden(0)
    assert _golden(1)


def test_check_code_accepts_the_answer_only():
    key = keypad.CodeKey(SECRET, SERIAL)
    request = GOLDEN[0][1]
    assert key.check(request, "51360921", "unlock")
    assert key.check(request, "5136 0921", "unlock")
    assert key.check(request.replace(" ", "-"), "5136-0921", "unlock")
    assert not key.check(request, "51360922", "unlock")
    assert not key.check(request, "51360921", "clear")  # bound to the action
    assert not key.check(GOLDEN[1][1], "51360921", "unlock")  # bound to the request
    assert not keypad.CodeKey(SECRET, "LCI-0002").check(request, "51360921", "unlock")
    assert not keypad.CodeKey(bytes(32), SERIAL).check(request, "51360921", "unlock")


def test_check_code_never_raises():
    key = keypad.CodeKey(SECRET, SERIAL)
    request = GOLDEN[0][1]
    assert not key.check(request, "5136092", "unlock")
    assert not key.check(request, "513609210", "unlock")
    assert not key.check(request, "", "unlock")
    assert not key.check(request, "5136092x", "unlock")
    assert not key.check(request, None, "unlock")
    assert not key.check(request, 51360921, "unlock")
    assert not key.check("1042 6219 0467", "51360921", "unlock")  # check digit off
    assert not key.check(None, "51360921", "unlock")
    assert not key.check(request, "51360921", "service")
    assert not key.check(request, "51360921", None)


def test_answer_explains_a_misread_request():
    raises(ValueError, keypad.answer_code, SECRET, SERIAL, "1042 6219 0467", "unlock")
    raises(ValueError, keypad.answer_code, SECRET, SERIAL, "1042 6219 046", "unlock")
    raises(ValueError, keypad.answer_code, SECRET, SERIAL, GOLDEN[0][1], "clear")


def test_nine_digit_codes():
    key = keypad.CodeKey(SECRET, SERIAL, 9)
    code = key.answer(GOLDEN[0][1], "unlock")
    assert len(code) == 9
    assert code[1:] == "51360921"  # the same MAC mod 10^9: its last 8 digits are the 8-digit code
    assert key.check(GOLDEN[0][1], code, "unlock")
    assert not keypad.CodeKey(SECRET, SERIAL).check(GOLDEN[0][1], code, "unlock")


def test_backoff_schedule():
    waits = []
    for wrong in range(15):
        waits.append(keypad.backoff_seconds(wrong))
    assert waits == [0, 0, 0, 0, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]
    schedule = {"free_tries": 1, "first_s": 10, "max_s": 25}
    assert keypad.backoff_seconds(1, schedule) == 0
    assert keypad.backoff_seconds(2, schedule) == 10
    assert keypad.backoff_seconds(3, schedule) == 20
    assert keypad.backoff_seconds(4, schedule) == 25


def test_brute_force_takes_over_ten_years():
    seconds = keypad.expected_bruteforce_seconds()
    # half the 10^8 code space, each guess after the first eleven waiting the full hour
    assert seconds == 30 + 60 + 120 + 240 + 480 + 960 + 1920 + (10**8 // 2 - 11) * 3600
    assert seconds > 10 * 365 * 86400
    assert seconds // (365 * 86400) > 5000
