"""Frames: golden bytes, the decoder table whole and byte by byte, corruption (both runtimes)."""

from protocol import cobs, framing
from tests.dualtest import check_rows, raises
from tests.protocol.golden import unhex, vectors


def _frame(row):
    return framing.Frame(row["type"], unhex(row["payload"]), row["seq"], row["flags"])


def test_golden_frames_encode_exactly():
    def check(row):
        assert framing.encode(_frame(row)) == unhex(row["wire"])

    check_rows(vectors()["frames"], check)


def test_golden_frames_decode_whole():
    def check(row):
        decoder = framing.Decoder()
        assert decoder.feed(unhex(row["wire"])) == [_frame(row)]
        assert decoder.dropped == 0

    check_rows(vectors()["frames"], check)


def _bytewise(decoder, data):
    got = []
    for byte in data:
        got.extend(decoder.feed(bytes([byte])))
    return got


def test_golden_frames_decode_byte_by_byte():
    def check(row):
        assert _bytewise(framing.Decoder(), unhex(row["wire"])) == [_frame(row)]

    check_rows(vectors()["frames"], check)


def _expected(row):
    return [framing.parse_body(cobs.decode(unhex(w)[:-1])) for w in row["frames"]]


def _drops(decoder):
    out = {}
    for reason in framing.DROP_REASONS:
        if decoder.drops[reason]:
            out[reason] = decoder.drops[reason]
    return out


def test_decoder_table_whole():
    def check(row):
        decoder = framing.Decoder()
        assert decoder.feed(unhex(row["input"])) == _expected(row), "frames"
        assert _drops(decoder) == row["drops"], "drops %r" % _drops(decoder)

    check_rows(vectors()["decoder"], check)


def test_decoder_table_byte_by_byte():
    def check(row):
        decoder = framing.Decoder()
        assert _bytewise(decoder, unhex(row["input"])) == _expected(row), "frames"
        assert _drops(decoder) == row["drops"], "drops %r" % _drops(decoder)

    check_rows(vectors()["decoder"], check)


def test_every_single_bit_flip_of_a_frame_is_detected():
    wire = framing.encode(framing.Frame(0x10, b"\x01\x02unlock token bytes", seq=77))
    for i in range(len(wire) - 1):  # every byte but the delimiter
        for bit in range(8):
            bad = bytearray(wire)
            bad[i] ^= 1 << bit
            decoder = framing.Decoder()
            frames = decoder.feed(bytes(bad) + b"\x00")
            # a flip that creates a zero splits the frame; nothing may decode as valid
            assert frames == [], (i, bit)


def test_oversize_payload_is_refused_on_encode():
    raises(framing.FrameError, framing.encode, framing.Frame(0x30, bytes(framing.MAX_PAYLOAD + 1)))


def test_maximum_frame_fits_the_stated_buffer():
    wire = framing.encode(framing.Frame(0x84, bytes(range(1, 256)) * 2 + b"\x01\x02"))
    assert len(wire) <= framing.MAX_STUFFED + 1
    assert framing.MAX_STUFFED + 1 == 527


def test_decoder_memory_stays_bounded_on_endless_garbage():
    decoder = framing.Decoder()
    for _ in range(50):
        decoder.feed(b"\x55" * 200)
        assert len(decoder._buf) <= framing.MAX_STUFFED
    assert decoder.drops["oversize"] == 1
    decoder.feed(b"\x00" + framing.encode(framing.Frame(0x02, b"", seq=5)))
    assert decoder.frames == 1
