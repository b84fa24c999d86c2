"""COBS against the published examples, and its refusals (both runtimes)."""

from protocol import cobs
from tests.dualtest import check_rows
from tests.protocol.golden import unhex, vectors


def test_published_examples_encode():
    def check(row):
        assert cobs.encode(unhex(row["data"])) == unhex(row["encoded"])

    check_rows(vectors()["cobs"], check)


def test_published_examples_decode():
    def check(row):
        assert cobs.decode(unhex(row["encoded"])) == unhex(row["data"])

    check_rows(vectors()["cobs"], check)


def test_encoded_never_contains_zero_and_overhead_is_bounded():
    for n in (0, 1, 253, 254, 255, 508, 523, 600):
        for fill in (0, 1, 0xFF):
            data = bytes([fill]) * n
            encoded = cobs.encode(data)
            assert 0 not in encoded
            assert len(encoded) <= cobs.max_encoded_len(n)
            assert cobs.decode(encoded) == data


def test_malformed_blocks_decode_to_none():
    assert cobs.decode(b"\x00") is None  # a zero code byte
    assert cobs.decode(b"\x05\x11") is None  # code points past the end
    assert cobs.decode(b"\x02\x00") is None  # a zero inside a block
