"""A service visit, step by step, with a receipt — and a defined state when it stops midway.

A visit of under five minutes: open a signed service session (bound to
this USB session), download and verify the event log, calibrate against the dry-gas
reference (as found, adjust, consecutive checks, finish), close the session with the next
service date — which clears the recall causes a visit resolves — and print a receipt.

If a step fails, VisitIncomplete carries a receipt listing what was done and what remains;
the handset stays in its service session (the engine cannot start, nothing is half-applied:
each step is one atomic request on the device), so the technician can resume with another
`lci-tool service` or `calibrate`.

On a bench or simulated handset (capability `bench`) the dry gas is simulated: the tool
offers the reference sample through the bench input before each calibration step, and says
so. On a customer handset it asks the technician to flow the gas.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from host_tools.device_client import DeviceClient, brac_text
from protocol import messages
from protocol.coretime import DAY

MAX_CHECKS = 4  # check attempts before the calibration is declared failed


class VisitIncomplete(Exception):
    def __init__(self, text: str, receipt: dict, outcome_unknown: bool = False):
        super().__init__(text)
        self.receipt = receipt
        self.outcome_unknown = outcome_unknown  # the last step's answer was lost


class Visit:
    def __init__(
        self,
        client: DeviceClient,
        *,
        signer_loader: Callable[[], object],
        say: Callable[[str], None] = print,
        confirm: Callable[[str], None] = lambda prompt: None,
        gas: Callable[[int], None] | None = None,
    ):
        self.client = client
        self.signer_loader = signer_loader
        self._signer = None
        self.say = say
        self.confirm = confirm
        self.gas = gas  # who flows the dry gas (a simulator's cell); default: bench input or a person
        self.bench = "bench" in (client.info or client.hello())["capabilities"]
        self.receipt: dict = {
            "serial": client.serial,
            "firmware": (client.info or {}).get("firmware"),
            "steps": [],
            "done": [],
            "remaining": [],
        }

    # -- tokens
    def _token(self, action: str, args: dict, now: int) -> bytes:
        from host_tools import tokens

        if self._signer is None:
            self._signer = self.signer_loader()
        return tokens.mint(self._signer, self.client.serial, action, args, now=now, ttl=600,
                           session_nonce=self.client.session_nonce)

    def _deliver(self, action: str, args: dict) -> dict:
        """Present a session token so that a lost answer never applies it twice (delivery.py):
        a new one is minted only when the handset proves the first was never applied."""
        from host_tools.delivery import deliver

        def mint(client: DeviceClient) -> bytes:
            return self._token(action, args, client.status()["now"])

        return deliver(self.client, mint(self.client), remint=mint, say=self.say)

    def _config(self) -> dict:
        import json

        from host_tools.link import Nack

        try:
            return json.loads(self.client.config() or b"{}")
        except (ValueError, Nack):
            return {}  # the handset's defaults then: the tool asks nothing it cannot check

    # -- steps
    def open_session(self) -> None:
        status = self.client.status()
        if status["compliance"] == "service":
            self.receipt["session_open"] = True
            self.say("service session already open")
            return
        self._deliver("service", {})
        self.receipt["session_open"] = True
        self.say("service session open: the engine cannot start until it is closed")

    def close_session(self, next_service_days: int | None, downloaded: int = 0) -> int:
        """Close the session with the next service date; `downloaded` is the log index up to
        which this visit downloaded and verified the log (the handset may release the rest)."""
        status = self.client.status()
        if next_service_days is None:
            next_service_days = self._config().get("service_interval_s", 60 * DAY) // DAY
        next_service = status["now"] + next_service_days * DAY
        args = {"next_service": next_service, "downloaded": downloaded}
        self._deliver("service_close", args)
        self.say(f"service session closed; next service in {next_service_days} days")
        return next_service

    def _gas(self, reference: int) -> None:
        if self.gas is not None:
            self.gas(reference)
        elif self.bench:
            self.client.bench(messages.BENCH_BLOW, reference, 1500, 345)
        else:
            self.confirm(f"flow the {brac_text(reference)} g/210L dry gas through the handset")

    def _step(self, step: int, name: str, reference: int) -> dict:
        self._gas(reference)
        result = self.client.calibrate(step, reference)
        row = {"step": name, "reference": reference, "measured": result["measured"],
               "within": result["passed"], "detail": result["detail"]}
        self.receipt["steps"].append(row)
        self.say(f"  {name:9} reference {brac_text(reference)}  measured {brac_text(result['measured'])}"
                 f"  {'ok' if result['passed'] else 'out'}  ({result['detail']})")
        return result

    def calibrate(self, reference: int, *, open_session: bool = True, close_session: bool = True,
                  next_service_days: int | None = None) -> dict:
        receipt = self.receipt
        receipt["reference"] = reference
        receipt["before"] = receipt.get("before") or self.client.status()
        if self.bench:
            self.say(f"bench handset: dry gas simulated at {brac_text(reference)} g/210L")
        try:
            if open_session:
                self.open_session()
            self.say("calibration:")
            self._step(messages.CAL_AS_FOUND, "as found", reference)
            self._step(messages.CAL_ADJUST, "adjust", reference)
            needed = self._config().get("cal_checks", 2)
            streak = 0
            for _ in range(MAX_CHECKS):
                streak = streak + 1 if self._step(messages.CAL_CHECK, "check", reference)["passed"] else 0
                if streak >= needed:
                    break
            finish = self.client.calibrate(messages.CAL_FINISH, reference)
            receipt["passed"] = finish["passed"]
            receipt["calibration"] = finish["detail"]
            receipt["done"].append("calibration " + ("passed" if finish["passed"] else "FAILED"))
            if close_session:
                downloaded = (receipt.get("log") or {}).get("last", -1) + 1
                receipt["next_service"] = self.close_session(next_service_days, downloaded)
                receipt["done"].append("service session closed")
        except Exception as exc:
            self._stop(exc, ["calibration"] + (["close the service session"] if close_session else []))
        receipt["after"] = self.client.status()
        receipt["finished"] = receipt["after"]["now"]
        return receipt

    def service(self, *, reference: int, next_service_days: int | None, log_path: Path | None,
                log_format: str = "jsonl", progress: bool = False) -> dict:
        from host_tools.log_download import download

        receipt = self.receipt
        receipt["before"] = self.client.status()
        receipt["started"] = receipt["before"]["now"]
        remaining = ["download the event log", "calibration", "close the service session"]
        try:
            self.open_session()
            receipt["done"].append("service session opened")
            if log_path is None:
                stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
                log_path = Path(f"{self.client.serial}-{stamp}.{log_format}")
            # the visit keeps its USB session: the download borrows it, never closes it, and
            # plugs the cable back in (a new session) when it asks again after a drop
            borrowed = [0]

            def borrow() -> _NoClose:
                borrowed[0] += 1
                if borrowed[0] > 1 and self.client.can_reconnect:
                    self.client.reconnect()
                return _NoClose(self.client)

            log = download(borrow, log_path, fmt=log_format, say=self.say, progress=progress)
            receipt["log"] = log
            if not log["chain_ok"]:
                raise VisitIncomplete(f"log chain broken: {log['chain_problem']}", receipt)
            receipt["done"].append(f"event log downloaded and verified ({log['records']} records)")
            remaining.pop(0)
        except Exception as exc:
            self._stop(exc, remaining)
        self.calibrate(reference, open_session=False, close_session=True,
                       next_service_days=next_service_days)
        return receipt

    def _stop(self, exc: Exception, remaining: list[str]) -> None:
        from host_tools.delivery import OutcomeUnknown

        if not self.receipt.get("session_open") and not (
                isinstance(exc, OutcomeUnknown) or getattr(exc, "maybe_applied", False)):
            # nothing to close: no session was opened
            remaining = [step for step in remaining if step != "close the service session"]
        self.receipt["remaining"] = remaining
        self.receipt["passed"] = False
        try:
            self.receipt["after"] = self.client.status()
        except Exception:
            self.receipt["after"] = None
        if isinstance(exc, VisitIncomplete):
            raise exc
        from host_tools.delivery import UNKNOWN_TEXT, OutcomeUnknown

        unknown = isinstance(exc, OutcomeUnknown) or bool(getattr(exc, "maybe_applied", False))
        text = str(exc) if isinstance(exc, OutcomeUnknown) or not unknown else f"{UNKNOWN_TEXT} ({exc})"
        raise VisitIncomplete(
            f"visit stopped: {text}; remaining: {', '.join(remaining)}", self.receipt, unknown
        ) from exc


class _NoClose:
    """A DeviceClient whose close() does nothing (the visit closes it at the end)."""

    def __init__(self, client: DeviceClient):
        self._client = client

    def __getattr__(self, name):
        return getattr(self._client, name)

    def close(self) -> None:
        pass


def receipt_text(r: dict) -> str:
    from host_tools.cli import core_text as core_to_text

    lines = [f"LCI-777 service receipt — handset {r.get('serial')} (firmware {r.get('firmware')})"]
    before, after = r.get("before") or {}, r.get("after") or {}
    if before:
        lines.append(f"as found:  {before.get('compliance')} {', '.join(before.get('causes') or [])}".rstrip())
    if r.get("log"):
        log = r["log"]
        lines.append(f"event log: {log['records']} records -> {log['path']} "
                     f"({'chain verified' if log['chain_ok'] else 'CHAIN BROKEN'})")
    for step in r.get("steps", []):
        lines.append(f"  {step['step']:9} ref {brac_text(step['reference'])} measured "
                     f"{brac_text(step['measured'])} {'ok' if step['within'] else 'out'}")
    if "calibration" in r:
        verdict = "PASS" if r["passed"] else "FAIL"
        detail = str(r["calibration"] or "")
        if detail.lower() in ("", "calibration passed", "calibration failed", "passed", "failed"):
            lines.append(f"calibration: {verdict}")
        else:
            lines.append(f"calibration: {verdict} ({detail})")
    elif r.get("remaining"):
        lines.append("calibration: not done")
    if r.get("next_service"):
        lines.append(f"next service: {core_to_text(r['next_service'])}")
    if after:
        lines.append(f"as left:   {after.get('compliance')} {', '.join(after.get('causes') or [])}".rstrip())
    if r.get("remaining"):
        lines.append("REMAINING: " + "; ".join(r["remaining"]))
    upload = r.get("upload")
    if upload:
        lines.append(f"upload:    NOT FILED ({upload['error']})" if "error" in upload else
                     f"upload:    visit {upload.get('visit')} filed with client {upload.get('client')}")
    return "\n".join(lines)
