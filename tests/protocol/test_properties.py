"""Property tests of the codecs (CPython only: hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import cobs, framing, messages

INT_RANGES = {"B": (0, 0xFF), "H": (0, 0xFFFF), "I": (0, 0xFFFFFFFF), "i": (-(2**31), 2**31 - 1)}


def field_strategy(kind: str):
    if kind in INT_RANGES:
        return st.integers(*INT_RANGES[kind])
    if kind == "s":
        return st.text(max_size=40).filter(lambda s: len(s.encode()) <= 255)
    if kind == "b":
        return st.binary(max_size=300)
    if kind == "*":
        return st.binary(max_size=200)
    return st.binary(min_size=int(kind[:-1]), max_size=int(kind[:-1]))


def layouts():
    out = [messages.EVENT_LAYOUT, messages.NACK_LAYOUT]
    for type_ in messages.CATALOGUE:
        _, request, reply = messages.entry(type_)
        out.append(request)
        if reply is not None:
            out.append(reply)
    return [messages.fields(layout) for layout in out]


@st.composite
def layout_and_values(draw):
    layout = draw(st.sampled_from(layouts()))
    values = {name: draw(field_strategy(kind)) for name, kind in layout}
    return layout, values


@given(layout_and_values())
def test_every_message_round_trips(case):
    layout, values = case
    payload = messages.encode(layout, values)
    assert messages.decode(layout, payload) == values


@st.composite
def frames(draw):
    return framing.Frame(
        draw(st.integers(0, 255)),
        draw(st.binary(max_size=framing.MAX_PAYLOAD)),
        seq=draw(st.integers(0, 0xFFFF)),
        flags=draw(st.integers(0, 255)),
    )


@given(frames())
def test_every_frame_round_trips(frame):
    assert framing.Decoder().feed(framing.encode(frame)) == [frame]


@given(st.binary(max_size=2000))
def test_cobs_round_trips(data):
    encoded = cobs.encode(data)
    assert b"\x00" not in encoded
    assert len(encoded) <= cobs.max_encoded_len(len(data))
    assert cobs.decode(encoded) == data


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


@settings(max_examples=300)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 10_000), max_size=20))
def test_any_bytes_any_chunking_yield_only_valid_frames_or_counted_drops(data, cuts):
    whole = framing.Decoder()
    expected = whole.feed(data)
    decoder = framing.Decoder()
    got = []
    for chunk in chunked(data, cuts):
        got.extend(decoder.feed(chunk))
        assert len(decoder._buf) <= framing.MAX_STUFFED
    assert got == expected  # chunking never changes the outcome
    assert decoder.drops == whole.drops
    for frame in got:  # whatever came out re-encodes to a checked frame
        assert framing.Decoder().feed(framing.encode(frame)) == [frame]
    delimiters = data.count(0)
    assert decoder.frames + decoder.dropped <= delimiters + 1


@given(frames(), st.lists(st.binary(max_size=60), max_size=3), st.data())
def test_frames_survive_surrounding_garbage(frame, garbage, data):
    noise = b"".join(g.replace(b"\x00", b"") + b"\x00" for g in garbage)
    wire = noise + framing.encode(frame) + noise
    assert frame in framing.Decoder().feed(wire)


@settings(max_examples=60)
@given(frames(), st.data())
def test_every_single_bit_corruption_is_detected(frame, data):
    wire = framing.encode(frame)
    i = data.draw(st.integers(0, len(wire) - 2))
    bit = data.draw(st.integers(0, 7))
    bad = bytearray(wire)
    bad[i] ^= 1 << bit
    got = framing.Decoder().feed(bytes(bad) + b"\x00")
    assert got == []
