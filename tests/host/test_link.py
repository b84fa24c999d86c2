"""host_tools/link.py over real endpoints: a pty, TCP, pyserial's loop://, with faults."""

from __future__ import annotations

import pytest

from host_tools.link import (
    BadRequest,
    Link,
    LinkTimeout,
    Nack,
    NoSuchPort,
    ProtocolVersionError,
    SerialTransport,
)
from protocol import errors, framing, messages
from tests.host.wire_peer import Faults, Peer
from tests.protocol.recorder import RecordingHandler


@pytest.fixture(params=["pty", "tcp"])
def peer(request):
    p = Peer(RecordingHandler(n_records=500))
    p = p.start_pty() if request.param == "pty" else p.start_tcp()
    yield p
    p.stop()


def test_request_and_reply_over_a_real_endpoint(peer):
    with Link(SerialTransport(peer.url)) as link:
        assert link.request(messages.PING, data=b"over the wire")["data"] == b"over the wire"


def test_nack_becomes_an_exception_with_its_code_and_meaning(peer):
    with Link(SerialTransport(peer.url)) as link, pytest.raises(Nack) as info:
        link.request(messages.CODE_ENTER, code="00000000")
    assert info.value.code == errors.BAD_CODE
    assert "keypad code is wrong" in str(info.value)


def test_log_stream_delivers_every_record_in_order(peer):
    with Link(SerialTransport(peer.url)) as link:
        got = []
        for first, records in link.read_log(0, 500, window=8):
            assert first == len(got)
            got.extend(records)
    assert got == peer.handler.log


def test_no_such_port_is_one_clear_line():
    with pytest.raises(NoSuchPort) as info:
        SerialTransport("/dev/does-not-exist-lci")
    assert "cannot open /dev/does-not-exist-lci" in str(info.value)
    assert "\n" not in str(info.value)


def test_silent_peer_times_out_after_retransmissions():
    # loop:// echoes our own request back: no reply ever comes
    link = Link(SerialTransport("loop://"), timeout=0.05, retries=2)
    with pytest.raises(LinkTimeout) as info:
        link.request(messages.PING, data=b"anyone?")
    assert "after 3 tries" in str(info.value)
    assert link.retransmissions == 2


def test_retransmission_over_a_corrupting_link_never_executes_twice():
    handler = RecordingHandler()
    p = Peer(handler, Faults(seed=7, corrupt=0.01)).start_pty()
    try:
        link = Link(SerialTransport(p.url), timeout=0.1, slow_timeout=0.1, retries=20)
        for _ in range(60):
            link.request(messages.CODE_ENTER, code="12345678")
        assert len(handler.executed) == 60  # one execution per request, whatever was resent
        assert link.retransmissions > 0
    finally:
        p.stop()


def test_log_download_resumes_over_a_lossy_link():
    handler = RecordingHandler(n_records=400)
    p = Peer(handler, Faults(seed=3, drop=0.0005, corrupt=0.0005)).start_tcp()
    try:
        link = Link(SerialTransport(p.url), timeout=0.1, retries=50)
        got = []
        for first, records in link.read_log(0, 400, window=4):
            assert first == len(got)
            got.extend(records)
        assert got == handler.log
        assert link.retransmissions > 0
    finally:
        p.stop()


def test_requests_the_protocol_cannot_carry_are_refused_before_sending():
    link = Link(SerialTransport("loop://"), timeout=0.05, retries=0)
    with pytest.raises(BadRequest):
        link.request(messages.PING, data=bytes(600))  # over the 512-byte payload limit
    with pytest.raises(BadRequest):
        link.request(messages.CODE_ENTER, code=1234)  # wrong field type
    with pytest.raises(BadRequest):
        link.request(messages.LOG_ACK, next=1)  # flow control has no reply
    with pytest.raises(BadRequest):
        link.request(messages.LOG_READ, start=0, count=1, window=1)


class _StuckTransport:
    """A peer that always answers LOG_READ with the same wrong page."""

    description = "stuck peer"

    def __init__(self):
        self.decoder = framing.Decoder()
        self.out = b""

    def write(self, data):
        for frame in self.decoder.feed(data):
            if frame.type == messages.LOG_READ:
                page = messages.encode(
                    messages.reply_layout(messages.LOG_READ),
                    {"first": 999, "n": 0, "records": b""},
                )
                reply = framing.Frame(messages.LOG_READ | messages.REPLY, page, frame.seq,
                                      framing.F_RESPONSE | framing.F_MORE)
                self.out += framing.encode(reply)

    def read(self, timeout):
        data, self.out = self.out, b""
        return data

    def close(self):
        pass


def test_a_log_stream_that_makes_no_progress_ends_in_a_timeout():
    link = Link(_StuckTransport(), timeout=0.05, retries=3)
    with pytest.raises(LinkTimeout) as info:
        list(link.read_log(0, 10))
    assert "no progress at record 0" in str(info.value)


def test_version_mismatch_is_reported(peer):
    link = Link(SerialTransport(peer.url))
    link.send_frame(framing.Frame(messages.PING, b"", seq=5, version=9))
    frame = None
    import time

    deadline = time.monotonic() + 2
    while frame is None and time.monotonic() < deadline:
        frame = link._receive(deadline)
    assert frame is not None
    with pytest.raises(ProtocolVersionError):
        link._decode_reply(messages.PING, frame)
