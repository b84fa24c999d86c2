"""Typed device operations over a Link: what lci-tool, the HIL suite and the demo call.

Each method is one protocol exchange (or one log stream) with its reply turned into
plain Python values with names instead of numbers (states, causes, actions, BrAC as a
g/210L float for display next to the integer). Errors stay the link's exceptions
(Nack, LinkTimeout, ...) plus WrongDevice when the serial is not the one expected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from host_tools.link import Link, LinkError, LinkLost, SerialTransport, Transport
from protocol import messages

BRAC_SCALE = 10_000  # protocol BrAC units per g/210L


class WrongDevice(LinkError):
    pass


def brac_units(value_g210l: float) -> int:
    """0.040 g/210L -> 400 (rounded to the nearest unit)."""
    return int(round(value_g210l * BRAC_SCALE))


def brac_text(units: int) -> str:
    return f"{units / BRAC_SCALE:.4f}"


def caps_names(mask: int) -> list[str]:
    names = []
    for name in dir(messages):
        if name.startswith("CAP_") and mask & getattr(messages, name):
            names.append(name[4:].lower())
    return sorted(names)


class DeviceClient:
    def __init__(self, link: Link):
        self.link = link
        self.info: dict | None = None
        self._reopen: Callable[[], Link] | None = None  # how to plug the cable back in

    @classmethod
    def open(cls, url: str, *, baudrate: int = 115200, timeout: float = 0.5, retries: int = 4):
        def reopen() -> Link:
            return Link(SerialTransport(url, baudrate), timeout=timeout, retries=retries)

        client = cls(reopen())
        client._reopen = reopen
        return client

    @property
    def can_reconnect(self) -> bool:
        return self._reopen is not None

    def reconnect(self) -> dict:
        """Close the connection, open the port again and say HELLO: a new USB session (a new
        session nonce). Raises the link's errors (NoSuchPort, LinkLost ...) if it cannot."""
        if self._reopen is None:
            raise LinkLost("this connection cannot be reopened")
        with contextlib.suppress(LinkError, OSError):
            self.link.close()
        self.info = None
        self.link = self._reopen()
        return self.hello()

    @classmethod
    def over(cls, transport: Transport, *, timeout: float = 0.5, retries: int = 4):
        return cls(Link(transport, timeout=timeout, retries=retries))

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- identity
    def hello(self) -> dict:
        raw = self.link.hello()
        self.info = {
            "serial": raw["serial"],
            "firmware": raw["firmware"],
            "board": raw["board"],
            "protocol": raw["proto"],
            "capabilities": caps_names(raw["caps"]),
            "caps": raw["caps"],
            "max_payload": raw["max_payload"],
            "window": raw["window"],
            "session_nonce": raw["nonce"],
        }
        return self.info

    @property
    def session_nonce(self) -> bytes:
        if self.info is None:
            self.hello()
        assert self.info is not None
        return self.info["session_nonce"]

    @property
    def serial(self) -> str:
        if self.info is None:
            self.hello()
        assert self.info is not None
        return self.info["serial"]

    def expect_serial(self, serial: str | None) -> None:
        if serial and serial != self.serial:
            raise WrongDevice(
                f"wrong device: this handset is {self.serial}, the paperwork names {serial}"
            )

    # -- state
    def status(self) -> dict:
        raw = self.link.request(messages.STATUS)
        return {
            "compliance": _name(messages.COMPLIANCE_STATES, raw["compliance"]),
            "session": _name(messages.SESSION_STATES, raw["session"]),
            "causes": messages.bits_to_names(raw["causes"], messages.CAUSES),
            "now": raw["now"],
            "deadline": raw["deadline"] or None,
            "deadline_left_s": raw["deadline_left"] if raw["deadline"] else None,
            "service_due": raw["service_due"] or None,
            "calibration_due": raw["calibration_due"] or None,
            "hold_left_s": raw["hold_left"],
            "override_left_s": raw["override_left"],
            "violations": raw["violations"],
            "relay_closed": bool(raw["relay"]),
            "alarm": bool(raw["alarm"]),
            "log_records": raw["log_count"],
            "log_free_pct": raw["log_free_pct"],
            "display": [raw["line1"], raw["line2"]],
        }

    def config(self) -> bytes:
        return self.link.request(messages.CONFIG_GET)["config"]

    def log_info(self) -> dict:
        return self.link.request(messages.LOG_INFO)

    def read_log(self, start: int, count: int, window: int | None = None) -> Iterator[tuple[int, list[bytes]]]:
        if window is None:
            window = (self.info or {}).get("window", 8) or 8
        yield from self.link.read_log(start, count, window=window)

    # -- authority
    def submit_token(self, token: bytes) -> dict:
        raw = self.link.request(messages.TOKEN, token=token)
        return {"action": _name(messages.ACTIONS, raw["action"]), "detail": raw["detail"]}

    def code_request(self, action: str = "unlock") -> str:
        return self.link.request(messages.CODE_REQUEST, action=messages.ACTIONS.index(action))[
            "request"
        ]

    def enter_code(self, code: str) -> dict:
        raw = self.link.request(messages.CODE_ENTER, code=code)
        return {"action": _name(messages.ACTIONS, raw["action"]), "until": raw["until"]}

    def provision(self, serial: str, root_key: bytes, device_secret: bytes) -> str:
        return self.link.request(
            messages.PROVISION, serial=serial, root_key=root_key, device_secret=device_secret
        )["serial"]

    # -- calibration
    def calibrate(self, step: int, reference_units: int) -> dict:
        raw = self.link.request(messages.CALIBRATE, step=step, reference=reference_units)
        return {
            "step": raw["step"],
            "measured": raw["measured"],
            "passed": bool(raw["passed"]),
            "detail": raw["detail"],
        }

    # -- bench inputs (simulator and bench boards only)
    def bench(self, input_: int, a: int = 0, b: int = 0, c: int = 0) -> dict:
        raw = self.link.request(messages.BENCH, input=input_, a=a, b=b, c=c)
        return {
            "compliance": _name(messages.COMPLIANCE_STATES, raw["compliance"]),
            "session": _name(messages.SESSION_STATES, raw["session"]),
        }

    def ping(self, data: bytes = b"") -> bytes:
        return self.link.request(messages.PING, data=data)["data"]

    def nonce_hex(self) -> str:
        return self.session_nonce.hex()


def _name(names: tuple, index: int) -> str:
    return names[index] if 0 <= index < len(names) else f"unknown({index})"

