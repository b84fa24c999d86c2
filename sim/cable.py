"""A cable pulled at the worst moment: after the handset has read a request, before its reply.

`CablePull` watches the bytes going to the handset (with its own frame decoder, so it sees
the frames the handset sees) for a request of one message type. When such a request has
been delivered, the server lets the handset handle it, then throws away everything the
handset said in reply and drops the host's connection (TCP; on a pty only the reply is
lost): the host cannot know whether the request was done. `times` pulls happen (0: every
such request, so reconnecting never helps); the pulls are counted in `pulled`.
"""

from __future__ import annotations

from protocol import framing, messages


def request_type(name: str) -> int:
    """A request type from its name ('TOKEN', 'token', 'calibrate') or number ('0x10')."""
    text = name.strip()
    try:
        value = int(text, 0)
    except ValueError:
        value = getattr(messages, text.upper(), None)
    if not isinstance(value, int) or messages.request_layout(value) is None:
        raise ValueError(f"{name!r} is not a request message type (e.g. TOKEN, CALIBRATE)")
    return value


class CablePull:
    def __init__(self, type_: int, times: int = 1, *, before: bool = False):
        if times < 0:
            raise ValueError("times must be >= 0 (0: every time)")
        self.type = type_
        self.times = times
        self.before = before
        self.pulled = 0
        self._decoder = framing.Decoder()

    def due(self, to_device: bytes) -> bool:
        """True if `to_device` completes a watched request and a pull is left to do."""
        seen = any(f.type == self.type and not f.is_response for f in self._decoder.feed(to_device))
        if not seen or (self.times and self.pulled >= self.times):
            return False
        self.pulled += 1
        return True

    def reset(self) -> None:
        """A new connection starts with a fresh line."""
        self._decoder.reset()
