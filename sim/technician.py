"""The people on the wire in a simulation: the technician's laptop and the back office.

`Technician(sim, provider)` talks to the simulated handset through the real host stack —
host_tools.device_client over host_tools.link over the in-process transport
(sim/transport.py) on the virtual clock — with keys from the provider (sim/provider.py).
It carries out what a service center does: installation and other work orders, unlock
tokens, set-time; and what the back office sends: billing directives.

Service visits are the technician's own tool, not a copy of it: host_tools.visit.Visit
opens and closes the session (tokens on the device's clock, the next service date from
the device's time) and runs the calibration (as found, adjust, as many consecutive checks
as the handset's `cal_checks` asks, retrying a check that is out, finish);
host_tools.log_download.download fetches the records not downloaded yet into a new JSON
Lines copy that resumes after the last record already held (so the chain is anchored
across visits) and host_tools.logverify re-checks the file as written. The dry gas is
real to the simulated world: the technician flows it through the handset's simulated fuel
cell (Simulator.apply_gas: drift, temperature, noise) when Visit asks for it.

Each operation puts "tech" or "billing" events on the simulator's timeline with its
outcome (one per token, calibration step and download); a refusal raises
host_tools.link.Nack after being recorded, a dead link host_tools.link.LinkError.
"""

from __future__ import annotations

import functools
import tempfile
from contextlib import contextmanager
from pathlib import Path

from host_tools import log_download, logverify
from host_tools.device_client import DeviceClient
from host_tools.link import LinkError, Nack
from host_tools.visit import Visit, VisitIncomplete
from protocol import errors
from sim.provider import Provider
from sim.simulator import Simulator
from sim.transport import open_link

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


class _RecordingClient(DeviceClient):
    """The laptop's DeviceClient: each calibration step Visit takes goes on the timeline."""

    def __init__(self, link, technician: Technician):
        super().__init__(link)
        self.technician = technician

    def calibrate(self, step: int, reference_units: int) -> dict:
        name = CAL_STEPS[step] if 0 <= step < len(CAL_STEPS) else str(step)
        return self.technician._do("tech", f"cal_{name}", {"reference": reference_units},
                                   lambda: DeviceClient.calibrate(self, step, reference_units))


class _Borrowed:
    """The laptop's client lent to log_download.download, which closes what it connects:
    closing the loan leaves the cable in."""

    def __init__(self, client: DeviceClient):
        self._client = client

    def __getattr__(self, name):
        return getattr(self._client, name)

    def close(self) -> None:
        pass


class LogCopyError(LinkError):
    """The laptop's copy of the log cannot be continued from the handset (its records were
    released at a visit this technician did not make, the copy is unreadable): the
    download stops as a dead link would, with this reason."""


def _unwrapped(operation):
    """Run a Visit step; a VisitIncomplete caused by a NACK or a dead link re-raises that
    cause (the receipt's story is already on the timeline), so callers see what the
    handset said."""
    try:
        return operation()
    except VisitIncomplete as stop:
        cause = stop.__cause__
        if isinstance(cause, (Nack, LinkError)):
            raise cause from None
        raise


class Technician:
    def __init__(self, sim: Simulator, provider: Provider, *, baud: int = 0, timeout: float = 0.5):
        self.sim = sim
        self.provider = provider
        self.client = _RecordingClient(open_link(sim, baud=baud, timeout=timeout), self)
        self.transport = self.client.link.transport
        self.transport.unplug()
        self._plugged = 0
        self.nonce: bytes | None = None
        # the laptop's copies of the event log, one file per download (see _new_copy)
        self._folder = tempfile.TemporaryDirectory(prefix="lci-sim-tech-")
        self.log_path: Path | None = None  # the latest copy
        self.downloads = 0
        self.downloaded = 0  # log index up to which the copies are downloaded and verified

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
        # numbered by the world's clock (SPEC 9.4): later directives, larger numbers
        args = self.provider.directives.args(self.provider.serial, action, "unpaid_balance", days,
                                             at=max(self.now(), 1))
        return self.token(action, args, source="billing", event=f"directive_{action}")

    # -- service: host_tools.visit.Visit, host_tools.log_download, host_tools.logverify --------------------
    def _visit(self) -> Visit:
        """The technician's tool on a fresh USB session (its HELLO nonce binds the session
        tokens). The dry gas is flowed through the simulated cell when Visit asks for it
        (a customer handset's procedure), not offered as a BENCH BLOW: so the reading is
        the cell's own (drift, temperature, noise), whatever the core does with BENCH."""
        self.hello()
        return Visit(self.client, signer_loader=lambda: self.provider.technician,
                     say=lambda text: None, gas=self.sim.apply_gas)

    @on_cable
    def open_service(self) -> dict:
        """Open a service session (nothing to do when one is open: the tool says so)."""
        visit = self._visit()
        detail = {"action": "service"}
        if self.sim.state["compliance"] == "service":
            detail["already_open"] = True
        self._do("tech", "service_open", detail, visit.open_session)
        return detail

    @on_cable
    def close_service(self, next_service_days: int = 60, downloaded: int | None = None) -> dict:
        """Close the session with the next service date `next_service_days` after the
        handset's own now. `downloaded`: the log index up to which the log was read and
        verified (the handset may then release older segments); None: what this
        technician's copy holds verified."""
        visit = self._visit()
        downloaded = self.downloaded if downloaded is None else downloaded
        detail = {"action": "service_close", "next_service_days": next_service_days,
                  "downloaded": downloaded}
        return self._do("tech", "service_close", detail,
                        lambda: {"next_service": visit.close_session(next_service_days, downloaded)})

    @on_cable
    def calibrate(self, reference: int = 400) -> dict:
        """Dry-gas calibration in an open session, as Visit runs it: as found, adjust, the
        handset's `cal_checks` consecutive checks (a check out of tolerance is retried, up to
        host_tools.visit.MAX_CHECKS), finish. One "tech" event per step, a "dry_gas" before each."""
        visit = self._visit()
        receipt = _unwrapped(lambda: visit.calibrate(reference, open_session=False, close_session=False))
        readings = [step["measured"] for step in receipt["steps"]]
        return {"passed": receipt["passed"], "as_found": readings[0], "readings": readings}

    def _new_copy(self) -> Path:
        """The file of the next download. It starts with the last record of the previous
        copy, so host_tools.log_download resumes after it — fetching only what is new —
        and anchors the new records' hash chain to the one already verified (the files
        stay small: each visit reads only its own)."""
        self.downloads += 1
        path = Path(self._folder.name) / f"{self.provider.serial}-log-{self.downloads:04d}.jsonl"
        if self.log_path is not None:
            rows = self.log_path.read_text().splitlines()
            if rows:
                path.write_text(rows[-1] + "\n")
        return path

    @on_cable
    def download_log(self) -> dict:
        """The records this technician has not downloaded yet, into a new copy anchored to
        the last record held (host_tools.log_download: verified page by page against it and
        against the handset's head hash), then that file re-checked as written, as
        `lci-tool log verify` would (host_tools.logverify)."""
        path = self._new_copy()
        try:
            log = log_download.download(lambda: _Borrowed(self.client), path, fmt="jsonl",
                                        say=lambda text: None)
        except log_download.LogFileError as exc:
            self._record("tech", "log_download_failed", {"error": str(exc)})
            raise LogCopyError(str(exc)) from None
        except Nack as nack:
            self._record("tech", "log_download_refused", {"nack": nack_name(nack.code), "reason": nack.detail})
            raise
        except LinkError as exc:
            self._record("tech", "log_download_failed", {"error": str(exc)})
            raise
        self.log_path = path
        copy = logverify.verify_file(path)
        chain_ok = log["chain_ok"] and copy["chain_ok"]
        following = log["first"] + log["records"]
        if chain_ok:
            self.downloaded = following
        detail = {"records": log["records"], "first": log["first"], "next": following, "chain_ok": chain_ok}
        if log["resumes"]:
            detail["resumes"] = log["resumes"]
        if not chain_ok:
            detail["problem"] = log["chain_problem"] or f"file as written: {copy['chain_problem']}"
        self._record("tech", "log_download", detail)
        return dict(detail, path=str(path))

    @on_cable
    def service_visit(self, *, next_service_days: int = 60, calibrate: bool = True,
                      reference: int = 400, download: bool = True) -> dict:
        """A whole visit, in host_tools.visit.Visit.service's order: open the session,
        download and verify the log, calibrate, close. A broken log chain stops the visit
        there, with the session left open (as the tool does): nothing is closed on a log
        nobody could verify."""
        self.open_service()
        downloaded = None
        if download:
            log = self.download_log()
            if not log["chain_ok"]:
                self._record("tech", "service_incomplete", {
                    "why": f"log chain broken: {log.get('problem')}",
                    "remaining": "calibration, close the service session"})
                return {"downloaded": None, "calibration": None, "complete": False,
                        "chain_ok": False}
            downloaded = log["next"]
        cal = self.calibrate(reference) if calibrate else None
        self.close_service(next_service_days, downloaded)
        return {"downloaded": downloaded, "calibration": cal, "complete": True,
                "chain_ok": True if download else None}

    # -- keypad codes (the client on the phone to the provider) -------------------------------------------
    def answer(self, request: str, action: str = "unlock") -> str:
        code = self.provider.code(request, action)
        self._record("billing", "code_issued", {"request": request, "action": action})
        return code

    def close(self) -> None:
        self.client.close()
        self._folder.cleanup()
