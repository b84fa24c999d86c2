"""The link server's C-codec framing (provider/link/host.py) reads and writes exactly the frames
protocol/framing.py does: same frames out of any byte stream, same drop counts, same wire bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import framing
from provider.link.host import FastDecoder, encode_frame

frames = st.builds(
    framing.Frame,
    st.integers(0, 255),
    st.binary(max_size=framing.MAX_PAYLOAD),
    seq=st.integers(0, 0xFFFF),
    flags=st.integers(0, 255),
)


@given(frames)
def test_encoding_is_the_reference_encoding(frame):
    assert encode_frame(frame) == framing.encode(frame)


@settings(max_examples=300)
@given(st.lists(st.one_of(frames.map(framing.encode), st.binary(max_size=40)), max_size=8),
       st.integers(1, 64))
def test_decoding_any_stream_matches_the_reference_decoder(parts, chunk):
    stream = b"".join(parts)
    fast, reference = FastDecoder(), framing.Decoder()
    got, want = [], []
    for i in range(0, len(stream), chunk):
        got += fast.feed(stream[i:i + chunk])
        want += reference.feed(stream[i:i + chunk])
    assert got == want
    assert fast.drops == reference.drops and fast.frames == reference.frames
