"""The device side of the wire rules: NACKs, dedupe, events, log windows (both runtimes)."""

from protocol import errors, framing, messages
from protocol.endpoint import Endpoint
from tests.protocol.recorder import RecordingHandler


class Wire:
    """Collects what the endpoint writes and decodes it."""

    def __init__(self):
        self.decoder = framing.Decoder()
        self.frames = []

    def write(self, data):
        self.frames.extend(self.decoder.feed(data))

    def take(self):
        out = self.frames
        self.frames = []
        return out


def _setup(n_records=0):
    handler = RecordingHandler(n_records)
    wire = Wire()
    return handler, wire, Endpoint(handler, wire.write)


def _request(type_, seq, **fields):
    payload = messages.encode(messages.request_layout(type_), fields)
    return framing.encode(framing.Frame(type_, payload, seq=seq))


def _nack(frame):
    assert frame.type == messages.NACK
    return messages.decode(messages.NACK_LAYOUT, frame.payload)["code"]


def test_ping_is_answered_with_the_same_seq():
    handler, wire, ep = _setup()
    ep.receive(_request(messages.PING, 41, data=b"xyz"))
    (reply,) = wire.take()
    assert reply.type == messages.PING | messages.REPLY
    assert reply.seq == 41 and reply.is_response
    assert messages.decode(messages.reply_layout(messages.PING), reply.payload)["data"] == b"xyz"


def test_duplicate_request_is_answered_from_cache_not_executed_again():
    handler, wire, ep = _setup()
    request = _request(messages.CODE_ENTER, 7, code="12345678")
    ep.receive(request)
    first = wire.take()
    ep.receive(request)  # the host retransmits: reply lost
    assert wire.take() == first
    assert len(handler.executed) == 1
    assert ep.cache.hits == 1


def test_same_seq_with_new_content_is_a_new_request():
    handler, wire, ep = _setup()
    ep.receive(_request(messages.PING, 7, data=b"a"))
    ep.receive(_request(messages.PING, 7, data=b"b"))
    assert len(handler.executed) == 2
    assert len(wire.take()) == 2


def test_refusal_is_a_nack_with_its_code_and_is_cached_too():
    handler, wire, ep = _setup()
    request = _request(messages.CODE_ENTER, 9, code="00000000")
    ep.receive(request)
    ep.receive(request)
    frames = wire.take()
    assert [_nack(f) for f in frames] == [errors.BAD_CODE, errors.BAD_CODE]
    assert len(handler.executed) == 1


def test_unknown_type_bad_payload_and_bad_version_never_reach_the_handler():
    handler, wire, ep = _setup()
    ep.receive(framing.encode(framing.Frame(0x3E, b"", seq=1)))
    ep.receive(framing.encode(framing.Frame(messages.CODE_ENTER, b"\x09abc", seq=2)))
    ep.receive(framing.encode(framing.Frame(messages.PING, b"", seq=3, version=2)))
    codes = [_nack(f) for f in wire.take()]
    assert codes == [errors.UNKNOWN_TYPE, errors.BAD_PAYLOAD, errors.BAD_VERSION]
    assert handler.executed == []


def test_handler_bug_becomes_an_internal_nack_that_is_not_cached():
    handler, wire, ep = _setup()
    request = _request(messages.CALIBRATE, 5, step=0, reference=400)
    ep.receive(request)
    ep.receive(request)
    frames = wire.take()
    assert [_nack(f) for f in frames] == [errors.INTERNAL, errors.INTERNAL]
    assert len(handler.executed) == 2  # a retry runs again: nothing cached a bug's answer
    assert ep.faults == 2


def test_a_reply_too_large_for_a_frame_is_an_internal_nack():
    handler, wire, ep = _setup()
    ep.receive(_request(messages.CONFIG_GET, 6))
    (frame,) = wire.take()
    assert _nack(frame) == errors.INTERNAL


def test_a_long_multibyte_detail_is_clipped_on_a_character_boundary():
    handler, wire, ep = _setup()
    ep.receive(_request(messages.STATUS, 8))
    (frame,) = wire.take()
    nack = messages.decode(messages.NACK_LAYOUT, frame.payload)
    assert nack["code"] == errors.NOT_PERMITTED
    assert len(nack["detail"].encode()) <= 120 and nack["detail"] == "\u20ac" * 40


def test_hello_starts_a_session_and_empties_the_reply_cache():
    handler, wire, ep = _setup()
    ep.receive(_request(messages.PING, 11, data=b""))
    ep.receive(_request(messages.HELLO, 12, proto_min=1, proto_max=1, host_nonce=bytes(8)))
    ep.receive(_request(messages.PING, 11, data=b""))  # same seq, new session: executed again
    assert [t for t, _ in handler.executed] == [messages.PING, messages.HELLO, messages.PING]


def test_log_ack_is_never_answered_even_in_another_version():
    handler, wire, ep = _setup()
    ack = messages.encode(messages.request_layout(messages.LOG_ACK), {"next": 1})
    ep.receive(framing.encode(framing.Frame(messages.LOG_ACK, ack, seq=3, version=2)))
    assert wire.take() == [] and handler.executed == []


def test_replies_and_events_sent_to_the_device_are_ignored():
    handler, wire, ep = _setup()
    ep.receive(framing.encode(framing.Frame(messages.PING | messages.REPLY, b"", 1, framing.F_RESPONSE)))
    ep.receive(framing.encode(framing.Frame(messages.EVENT, b"", 1, framing.F_EVENT)))
    assert wire.take() == [] and ep.ignored == 2


def test_garbage_is_counted_and_nothing_is_executed():
    handler, wire, ep = _setup()
    ep.receive(b"\x01\x02\x03\x00\xff\xfe\x00" + bytes(range(1, 200)) + b"\x00")
    assert handler.executed == [] and wire.take() == []
    assert ep.decoder.dropped == 3


def test_events_carry_their_own_counter():
    handler, wire, ep = _setup()
    ep.event(messages.EV_STATE, 2, 0, 1000, "lockout")
    ep.event(messages.EV_STATE, 3, 0, 1001, "code")
    frames = wire.take()
    assert [f.seq for f in frames] == [1, 2]
    assert all(f.is_event and f.type == messages.EVENT for f in frames)
    event = messages.decode(messages.EVENT_LAYOUT, frames[0].payload)
    assert event["detail"] == "lockout" and event["compliance"] == 2


def _pages(frames):
    out = []
    for f in frames:
        page = messages.decode(messages.reply_layout(messages.LOG_READ), f.payload)
        out.append((page["first"], len(messages.split_records(page["records"])), bool(f.flags & framing.F_MORE)))
    return out


def test_log_stream_respects_the_window_and_slides_on_ack():
    handler, wire, ep = _setup(n_records=100)  # 41-byte records: 12 per page
    ep.receive(_request(messages.LOG_READ, 20, start=0, count=100, window=3))
    pages = _pages(wire.take())
    assert [p[0] for p in pages] == [0, 12, 24]  # three pages in flight, then it waits
    ep.poll()
    assert wire.take() == []
    ack = messages.encode(messages.request_layout(messages.LOG_ACK), {"next": 12})
    ep.receive(framing.encode(framing.Frame(messages.LOG_ACK, ack, seq=20)))
    assert [p[0] for p in _pages(wire.take())] == [36]


def test_log_stream_to_the_end_marks_the_last_page():
    handler, wire, ep = _setup(n_records=30)
    ep.receive(_request(messages.LOG_READ, 21, start=5, count=1000, window=16))
    pages = _pages(wire.take())
    assert pages == [(5, 12, True), (17, 12, True), (29, 1, False)]


def test_log_stream_resumes_from_any_index_and_refuses_out_of_range():
    handler, wire, ep = _setup(n_records=30)
    ep.receive(_request(messages.LOG_READ, 22, start=29, count=5, window=4))
    assert _pages(wire.take()) == [(29, 1, False)]
    ep.receive(_request(messages.LOG_READ, 23, start=31, count=5, window=4))
    (frame,) = wire.take()
    assert _nack(frame) == errors.LOG_RANGE
    ep.receive(_request(messages.LOG_READ, 24, start=30, count=5, window=4))
    assert _pages(wire.take()) == [(30, 0, False)]  # at the end: one empty final page


def test_ack_for_another_stream_is_ignored():
    handler, wire, ep = _setup(n_records=100)
    ep.receive(_request(messages.LOG_READ, 30, start=0, count=100, window=1))
    wire.take()
    ack = messages.encode(messages.request_layout(messages.LOG_ACK), {"next": 12})
    ep.receive(framing.encode(framing.Frame(messages.LOG_ACK, ack, seq=99)))
    assert wire.take() == []


def _crc_forge(prefix, target):
    """4 bytes that make crc32(prefix + them) == target (CRC-32 is affine over GF(2))."""
    from binascii import crc32

    base = crc32(prefix + bytes(4)) & 0xFFFFFFFF
    columns = []  # (image of the basis bit, the bit) for each of the 32 suffix bits
    for bit in range(32):
        suffix = bytearray(4)
        suffix[bit // 8] = 1 << (bit % 8)
        columns.append(((crc32(prefix + bytes(suffix)) & 0xFFFFFFFF) ^ base, 1 << bit))
    want = target ^ base
    # Gaussian elimination: reduce the columns to a basis with distinct leading bits
    basis = []
    for image, bits in columns:
        for b_image, b_bits in basis:
            if image ^ b_image < image:
                image ^= b_image
                bits ^= b_bits
        if image:
            basis.append((image, bits))
            basis.sort(key=lambda e: -e[0])
    chosen = 0
    for b_image, b_bits in basis:
        if want ^ b_image < want:
            want ^= b_image
            chosen ^= b_bits
    assert want == 0
    return bytes([(chosen >> (8 * i)) & 0xFF for i in range(4)])


def test_a_payload_with_the_same_crc_is_a_new_request_not_a_retransmission():
    from binascii import crc32

    handler, wire, ep = _setup()
    ep.receive(_request(messages.PING, 7, data=b"transfer 10"))
    first = wire.take()
    forged = b"transfer 99" + _crc_forge(b"transfer 99", crc32(b"transfer 10") & 0xFFFFFFFF)
    assert crc32(forged) == crc32(b"transfer 10")
    ep.receive(_request(messages.PING, 7, data=forged))
    (reply,) = wire.take()
    assert messages.decode(messages.reply_layout(messages.PING), reply.payload)["data"] == forged
    assert len(handler.executed) == 2 and reply != first[0]


def test_the_log_window_is_capped_at_the_endpoint_maximum():
    handler = RecordingHandler(100)
    wire = Wire()
    ep = Endpoint(handler, wire.write, max_window=4)
    ep.receive(_request(messages.LOG_READ, 20, start=0, count=100, window=16))
    assert [p[0] for p in _pages(wire.take())] == [0, 12, 24, 36]


def test_a_line_reset_drops_a_partial_frame_and_the_stream():
    handler, wire, ep = _setup(n_records=100)
    ep.receive(_request(messages.LOG_READ, 30, start=0, count=100, window=1))
    wire.take()
    ping = _request(messages.PING, 8, data=b"hi")
    ep.receive(ping[:6])  # the old host's half frame
    ep.line_reset()
    assert ep.stream is None
    ep.receive(ping)  # the new host sends no leading delimiter
    (reply,) = wire.take()
    assert reply.type == messages.PING | messages.REPLY and reply.seq == 8
    assert ep.decoder.dropped == 0
