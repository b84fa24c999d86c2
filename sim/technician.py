"""The people on the wire in a simulation: the technician's laptop and the back office.

`Technician(sim, provider)` talks to the simulated handset through the real host stack —
host_tools.device_client over host_tools.link over the in-process transport
(sim/transport.py) on the virtual clock — with tokens minted by the provider
(sim/provider.py). It carries out what a service center does: installation and other
work orders, service sessions with dry-gas calibration and log download, unlock tokens,
set-time; and what the back office sends: billing directives. Each operation puts one
"tech" or "billing" event on the simulator's timeline with its outcome; a refusal raises
host_tools.link.Nack after being recorded.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

from firmware import eventlog
from host_tools.link import LinkError, Nack
from protocol import errors, messages
from sim.provider import Provider
from sim.simulator import SECOND, Simulator
from sim.transport import open_client

DAY_S = 86_400
CAL_STEPS = ("as_found", "adjust", "check", "finish")


def nack_name(code: int) -> str:
    for name in dir(errors):
        if name.isupper() and getattr(errors, name) == code and name != "MEANINGS":
            return name
    return f"0x{code:02x}"


def on_cable(method):
    """The laptop is plugged in for the operation and unplugged after it (between visits
    nobody listens to the handset, and its event frames are not piled up for months)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.cable():
            return method(self, *args, **kwargs)

    return wrapper


class Technician:
    def __init__(self, sim: Simulator, provider: Provider, *, baud: int = 0, timeout: float = 0.5):
        self.sim = sim
        self.provider = provider
        self.client = open_client(sim, baud=baud, timeout=timeout)
        self.transport = self.client.link.transport
        self.transport.unplug()
        self._plugged = 0
        self.nonce: bytes | None = None
        self.held: tuple[int, bytes] | None = None  # (next index, hash of the last record) downloaded

    @contextmanager
    def cable(self):
        """Plugged in for the duration (nests)."""
        self._plugged += 1
        if self._plugged == 1:
            self.transport.plug()
        try:
            yield self.client
        finally:
            self._plugged -= 1
            if self._plugged == 0:
                self.transport.unplug()

    # -- plumbing ------------------------------------------------------------------------------------
    def now(self) -> int:
        return self.sim.clock.world_s()

    def _record(self, source: str, event: str, detail: dict) -> dict:
        self.sim.emit(source, event, detail)
        return detail

    def _do(self, source: str, event: str, detail: dict, operation):
        try:
            result = operation()
        except Nack as nack:
            self._record(source, event + "_refused", dict(detail, nack=nack_name(nack.code),
                                                          reason=nack.detail))
            raise
        except LinkError as exc:
            self._record(source, event + "_failed", dict(detail, error=str(exc)))
            raise
        if isinstance(result, dict):
            detail = dict(detail, **{k: v for k, v in result.items() if isinstance(v, (str, int, bool))})
        self._record(source, event, detail)
        return result

    @on_cable
    def hello(self) -> dict:
        info = self.client.hello()
        self.nonce = info["session_nonce"]
        return info

    @on_cable
    def token(self, action: str, args: dict, *, session: bool = False, source: str = "tech",
              event: str | None = None, ttl: int = 3600) -> dict:
        """Mint a token for `action` and present it; session-bound tokens after a HELLO."""
        nonce = None
        if session:
            nonce = self.hello()["session_nonce"]
        # valid by the world's clock and by the handset's (which may have been set off):
        # the laptop reads the device clock (STATUS) before it mints
        world, device = self.now(), self.sim.clock.now()
        token = self.provider.token(action, args, now=min(world, device), session_nonce=nonce,
                                    ttl=ttl + abs(world - device))
        detail = {"action": action, **{k: v for k, v in args.items() if isinstance(v, (str, int))}}
        return self._do(source, event or action, detail, lambda: self.client.submit_token(token))

    # -- work orders, unlocks, clock -------------------------------------------------------------------
    def work_order(self, order: str, vehicle: str = "", order_id: str = "") -> dict:
        order_id = order_id or f"WO-{self.sim.seed}-{order[:4].upper()}"
        return self.token("work_order", {"order": order, "id": order_id, "vehicle": vehicle},
                          event=order if order == "installation" else "work_order")

    def install(self, vehicle: str = "", order_id: str = "") -> dict:
        return self.work_order("installation", vehicle, order_id)

    def unlock(self, seconds: int = 0) -> dict:
        return self.token("unlock", {"seconds": seconds}, event="unlock_token")

    def set_time(self, time_s: int) -> dict:
        return self.token("set_time", {"time": time_s}, session=True)

    def directive(self, action: str, days: int | None = None) -> dict:
        args: dict = {"cause": "unpaid_balance"}
        if action == "recall":
            args["days"] = 7 if days is None else days
        return self.token(action, args, source="billing", event=f"directive_{action}")

    # -- service ----------------------------------------------------------------------------------------
    def open_service(self) -> dict:
        return self.token("service", {}, session=True, event="service_open")

    def close_service(self, next_service_days: int = 60, downloaded: int | None = None) -> dict:
        """Close the session. `downloaded`: the log index up to which the log was read and
        verified at this visit (the handset may then release older segments); None: 0."""
        args = {"next_service": self.now() + next_service_days * DAY_S, "downloaded": downloaded or 0}
        return self.token("service_close", args, event="service_close")

    @on_cable
    def calibrate(self, reference: int = 400, checks: int = 2, gap_s: int = 60) -> dict:
        """Dry-gas calibration: as-found, adjust, `checks` checks `gap_s` apart, finish."""
        steps = [messages.CAL_AS_FOUND, messages.CAL_ADJUST] + [messages.CAL_CHECK] * checks
        readings = []
        for i, step in enumerate(steps):
            if step == messages.CAL_CHECK and i > 2:
                self.sim.advance(gap_s * SECOND)
            self.sim.apply_gas(reference)
            reply = self._do("tech", f"cal_{CAL_STEPS[step]}", {"reference": reference},
                             lambda step=step: self.client.calibrate(step, reference))
            readings.append(reply["measured"])
        final = self._do("tech", "cal_finish", {"reference": reference},
                         lambda: self.client.calibrate(messages.CAL_FINISH, reference))
        return {"passed": final["passed"], "as_found": readings[0], "readings": readings}

    @on_cable
    def download_log(self, start: int | None = None) -> dict:
        """The records not downloaded yet by this technician (from the last record held, or
        the device's first), the hash chain verified from the last record held (or from the
        first record read) to the device's head hash."""
        info = self.client.log_info()
        first = info["first"]
        prev = None
        if start is not None:
            first = start
        elif self.held is not None and self.held[0] >= first:
            first, prev = self.held
        count = info["first"] + info["count"] - first
        records: list[bytes] = []
        for _, page in self.client.read_log(first, count):
            records.extend(page)
        head = info["head_hash"]
        head = bytes.fromhex(head) if isinstance(head, str) else bytes(head)
        problem = eventlog.verify_chain(records, prev_hash=prev, first_index=first, head_hash=head)
        if problem is None and records:
            self.held = (first + len(records), eventlog.record_hash(records[-1]))
        detail = {"records": len(records), "first": first, "next": first + len(records),
                  "chain_ok": problem is None}
        if problem is not None:
            detail["problem"] = f"record {problem[0]}: {problem[1]}"
        self._record("tech", "log_download", detail)
        return dict(detail, raw=records)

    @on_cable
    def service_visit(self, *, next_service_days: int = 60, calibrate: bool = True,
                      reference: int = 400, download: bool = True) -> dict:
        """A whole visit: open the session, download and verify the log, calibrate, close."""
        self.open_service()
        downloaded = None
        if download:
            downloaded = self.download_log()["next"]
        cal = self.calibrate(reference) if calibrate else None
        self.close_service(next_service_days, downloaded)
        return {"downloaded": downloaded, "calibration": cal}

    # -- keypad codes (the client on the phone to the provider) -------------------------------------------
    def answer(self, request: str, action: str = "unlock") -> str:
        code = self.provider.code(request, action)
        self._record("billing", "code_issued", {"request": request, "action": action})
        return code

    def close(self) -> None:
        self.client.close()
