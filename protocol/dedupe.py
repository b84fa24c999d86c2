"""The device's reply cache: a repeated request is answered again, never executed twice.

The host retransmits a request (same seq, same type, same payload) when its reply is
lost. The device keeps the encoded replies to its last CAPACITY requests; a request that
matches one of them by (seq, type, SHA-256 of the payload) gets the cached bytes back and
is not dispatched. A request with a seq already cached but different content is a new
request (the host wrapped its 16-bit counter) and replaces the entry.

The key holds the whole payload's SHA-256, not a CRC: a CRC-32 is easy to forge, and a
forged payload with another request's CRC would be answered with that request's reply.
Memory: CAPACITY x (one maximum frame + a 32-byte digest) (4 x 559 bytes).
"""

from hashlib import sha256

CAPACITY = 4


class ReplyCache:
    def __init__(self, capacity=CAPACITY):
        self.capacity = capacity
        self._entries = []  # [(key, wire_bytes)], oldest first
        self.hits = 0

    @staticmethod
    def key(frame):
        return (frame.seq, frame.type, sha256(frame.payload).digest())

    def lookup(self, frame):
        """Cached reply bytes for a repeated request, or None."""
        key = self.key(frame)
        for entry_key, wire in self._entries:
            if entry_key == key:
                self.hits += 1
                return wire
        return None

    def store(self, frame, wire):
        key = self.key(frame)
        kept = []
        for entry in self._entries:
            if entry[0][0] != frame.seq:
                kept.append(entry)
        kept.append((key, wire))
        while len(kept) > self.capacity:
            kept.pop(0)
        self._entries = kept

    def clear(self):
        self._entries = []
