"""A protocol handler for the endpoint tests: counts executions, serves an in-memory log.

It stands in for the device core only in tests of protocol/endpoint.py's own rules
(dedupe, NACKs, streaming windows); the core's handler is tested in tests/firmware.
"""

from protocol import errors, messages
from protocol.endpoint import Refused


class RecordingHandler:
    def __init__(self, n_records=0, record_size=40):
        self.executed = []
        self.log = []
        for i in range(n_records):
            body = bytes([i & 0xFF]) * record_size
            self.log.append(body)

    def handle(self, type_, fields):
        self.executed.append((type_, fields))
        if type_ == messages.PING:
            return {"data": fields["data"]}
        if type_ == messages.CODE_ENTER:
            if fields["code"] != "12345678":
                raise Refused(errors.BAD_CODE, "try again")
            return {"action": 1, "until": 99}
        if type_ == messages.CALIBRATE:
            raise ValueError("a bug in the handler")
        if type_ == messages.CONFIG_GET:
            return {"config": bytes(600)}  # a reply too large for one frame: a handler bug
        if type_ == messages.STATUS:
            raise Refused(errors.NOT_PERMITTED, "\u20ac" * 120)  # a detail too long in bytes
        if type_ == messages.HELLO:
            return {
                "proto": 1, "serial": "T-1", "firmware": "0", "board": "test", "caps": 0,
                "max_payload": 512, "window": 8, "nonce": bytes(16),
            }
        raise Refused(errors.NOT_SUPPORTED)

    def log_bounds(self):
        return 0, len(self.log)

    def log_records(self, start, max_count, budget):
        out = []
        used = 0
        i = start
        while i < len(self.log) and len(out) < max_count:
            size = 1 + len(self.log[i])
            if used + size > budget:
                break
            out.append(self.log[i])
            used += size
            i += 1
        return out
