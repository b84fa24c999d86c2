"""The device side of the wire: frames in, dispatch, replies, events and log streams out.

An Endpoint owns the protocol rules on the device so the core only answers requests:
- bytes from the serial port go to receive(); whole frames are checked by the decoder
  (bad ones are counted drops, never errors);
- a frame from another protocol version gets NACK BAD_VERSION; an unknown type NACK
  UNKNOWN_TYPE; a payload that does not fit its layout NACK BAD_PAYLOAD — the handler
  never sees any of them, so bad input cannot change state;
- a repeated request (same seq, type and payload) is answered from the reply cache and
  not executed again;
- line_reset() is a new connection on the line (a host opened the port): the decoder
  starts fresh, so bytes the last host left half sent cannot spoil the new host's first
  frame, and the last host's log stream ends;
- the handler answers `handle(type, fields)` with a dict of reply fields, or raises
  Refused(code, detail) for a NACK;
- LOG_READ starts a stream: poll() sends pages while fewer than `window` are unacked
  (the request's window, at least 1 and at most `max_window`, the value HELLO announced);
  LOG_ACK slides the window; a new LOG_READ replaces the stream (resume after a loss);
- event() sends an unsolicited EVENT frame with the device's own event counter.

`write` is any callable taking bytes (the HAL's serial port write).
"""

from protocol import errors, framing, messages
from protocol.dedupe import ReplyCache
from protocol.messages import MessageError

MAX_WINDOW = 16


class Refused(Exception):
    """Raised by a handler to answer with NACK `code`; nothing must have changed."""

    def __init__(self, code, detail=""):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


class _Stream:
    def __init__(self, seq, start, end, window):
        self.seq = seq
        self.next = start
        self.end = end
        self.window = window
        self.unacked = []  # record index after each page sent and not yet acked


class Endpoint:
    def __init__(self, handler, write, max_window=MAX_WINDOW):
        if not 1 <= max_window <= MAX_WINDOW:
            raise ValueError("max_window must be 1..%d" % MAX_WINDOW)
        self.handler = handler
        self.write = write
        self.max_window = max_window
        self.decoder = framing.Decoder()
        self.cache = ReplyCache()
        self.stream = None
        self.event_seq = 0
        self.nacks = 0
        self.ignored = 0  # well-formed frames a device never expects (replies, events)
        self.faults = 0  # handler exceptions turned into NACKs

    # -- input
    def line_reset(self):
        """A new connection on the line: a fresh decoder (its counters kept), no stream."""
        self.decoder.reset()
        self.stream = None

    def receive(self, data):
        for frame in self.decoder.feed(data):
            self.dispatch(frame)

    def dispatch(self, frame):
        if frame.is_response or frame.is_event:
            self.ignored += 1
            return
        if frame.type == messages.LOG_ACK:
            if frame.version == framing.VERSION:
                self._ack(frame)
            return  # flow control is never answered, not even with a NACK
        if frame.version != framing.VERSION:
            self._nack(frame, errors.BAD_VERSION, "device speaks v%d" % framing.VERSION)
            return
        cached = self.cache.lookup(frame)
        if cached is not None:
            self.write(cached)
            return
        layout = messages.request_layout(frame.type)
        if layout is None:
            self._nack(frame, errors.UNKNOWN_TYPE, "type 0x%02x" % frame.type)
            return
        try:
            fields = messages.decode(layout, frame.payload)
        except MessageError as exc:
            self._nack(frame, errors.BAD_PAYLOAD, str(exc))
            return
        if frame.type == messages.LOG_READ:
            self._start_stream(frame, fields)
            return
        if frame.type == messages.HELLO:
            self.cache.clear()  # a new session: no reply of the last one may be replayed
        try:
            reply = self.handler.handle(frame.type, fields)
            payload = messages.encode(messages.reply_layout(frame.type), reply)
            wire = framing.encode(
                framing.Frame(frame.type | messages.REPLY, payload, frame.seq, framing.F_RESPONSE)
            )
        except Refused as refusal:
            self._nack(frame, refusal.code, refusal.detail)
            return
        except Exception as exc:  # a bug must not take the device down: NACK and count it
            self._internal(frame, exc)
            return
        self.cache.store(frame, wire)
        self.write(wire)

    def _internal(self, frame, exc):
        """NACK INTERNAL for a handler bug; not cached, so a retry runs again."""
        self.faults += 1
        self._nack(frame, errors.INTERNAL, type(exc).__name__, cache=False)

    def _nack(self, frame, code, detail="", cache=True):
        self.nacks += 1
        payload = messages.encode(
            messages.NACK_LAYOUT,
            {
                "code": code,
                "request_type": frame.type & 0xFF,
                "detail": messages.clip_utf8(str(detail), 120),
            },
        )
        wire = framing.encode(framing.Frame(messages.NACK, payload, frame.seq, framing.F_RESPONSE))
        if cache:
            self.cache.store(frame, wire)
        self.write(wire)

    # -- log streaming
    def _start_stream(self, frame, fields):
        try:
            first, count = self.handler.log_bounds()
        except Exception as exc:
            self._internal(frame, exc)
            return
        start = fields["start"]
        if start < first or start > first + count:
            self._nack(frame, errors.LOG_RANGE, "records %d..%d" % (first, first + count))
            return
        end = min(first + count, start + fields["count"])
        window = max(1, min(self.max_window, fields["window"]))
        self.stream = _Stream(frame.seq, start, end, window)
        if start == end:  # nothing to send: one empty final page
            self._send_page(self.stream, [])
            self.stream = None
            return
        self.poll()

    def _ack(self, frame):
        stream = self.stream
        if stream is None or frame.seq != stream.seq:
            return
        try:
            acked = messages.decode(messages.request_layout(messages.LOG_ACK), frame.payload)
        except MessageError:
            return
        while stream.unacked and stream.unacked[0] <= acked["next"]:
            stream.unacked.pop(0)
        if stream.next >= stream.end and not stream.unacked:
            self.stream = None
        else:
            self.poll()

    def _send_page(self, stream, records):
        first = stream.next
        stream.next += len(records)
        flags = framing.F_RESPONSE
        if stream.next < stream.end:
            flags |= framing.F_MORE
        payload = messages.encode(
            messages.reply_layout(messages.LOG_READ),
            {"first": first, "n": len(records), "records": messages.pack_records(records)},
        )
        self.write(
            framing.encode(framing.Frame(messages.LOG_READ | messages.REPLY, payload, stream.seq, flags))
        )
        stream.unacked.append(stream.next)

    def poll(self):
        """Send what the log stream's window allows; call it from the device loop."""
        stream = self.stream
        while stream is not None and stream.next < stream.end and len(stream.unacked) < stream.window:
            try:
                records = self.handler.log_records(
                    stream.next, min(255, stream.end - stream.next), messages.LOG_PAGE_BUDGET
                )
                if not records or len(records) > 255:
                    raise ValueError("no records")
                self._send_page(stream, records)
            except Exception:
                # the log shrank under us or a record is unreadable: end the stream; the
                # host's timeout re-requests from the first record it lacks
                self.faults += 1
                self.stream = None
                return

    @property
    def streaming(self):
        return self.stream is not None and self.stream.next < self.stream.end

    # -- output
    def event(self, kind, compliance, session, time, detail=""):
        self.event_seq = (self.event_seq + 1) & 0xFFFF
        payload = messages.encode(
            messages.EVENT_LAYOUT,
            {
                "kind": kind,
                "compliance": compliance,
                "session": session,
                "time": time,
                "detail": messages.clip_utf8(detail, 100),
            },
        )
        self.write(framing.encode(framing.Frame(messages.EVENT, payload, self.event_seq, framing.F_EVENT)))
