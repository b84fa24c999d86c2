"""lci-tool: the technician's command line for the LCI-777 handset, over the USB cable.

Every command takes --port (a device path or any pyserial URL; else $LCI_PORT; else the one
attached LCI-777 found by USB id), --json (one JSON object on stdout), -v (the frames on the
wire), -q (no progress), before or after the command, and exits with a documented code
(host_tools/exitcodes.py). Errors are one line on stderr. Times are ISO 8601 with the zone.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from host_tools import cli, exitcodes
from host_tools.delivery import UNKNOWN_TEXT, OutcomeUnknown
from host_tools.device_client import DeviceClient, WrongDevice, brac_units
from host_tools.link import (
    BadReply,
    BadRequest,
    LinkError,
    LinkLost,
    LinkTimeout,
    Nack,
    NoSuchPort,
    ProtocolVersionError,
)
from host_tools.ports import PortError, resolve
from protocol import coretime

EPILOG = """\
examples:
  lci-tool devs                              the serial ports, LCI-777 handsets marked
  lci-tool info                              the handset on the one USB port found
  lci-tool --port /dev/ttyACM0 status --json
  lci-tool --port socket://127.0.0.1:7777 log download --out visit.jsonl
  lci-tool log verify visit.jsonl
  lci-tool calibrate --reference 0.040 --key tech.key
  lci-tool unlock --key tech.key --hours 4      mint and present an unlock token
  lci-tool unlock --token unlock.tok            present a token from the back office
  lci-tool code issue --serial LCI7-000123 --request "1042 7781 93" --action unlock
  lci-tool code enter 12345678               type the provider's answer over the cable
  lci-tool work-order apply removal.toml --key tech.key
  lci-tool service --reference 0.040 --key tech.key --next-service-days 60
  lci-tool service --key center.key --upload https://portal.example/service/visits/upload/
  lci-tool keygen --dir ~/.lci777            provider root key + master secret (0600)
  eval "$(register-python-argcomplete lci-tool)"   tab completion in bash/zsh

""" + exitcodes.epilog(exitcodes.TOOL)

KEY_DIR_ENV = "LCI_KEYS"
CLOCK_SLACK_S = 60  # a minted token is valid from this long before the handset's STATUS time


class ToolError(Exception):
    """A failure with its exit code; str() is the one line printed."""

    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code


def version() -> str:
    return cli.package_version()


# ---- output -----------------------------------------------------------------------------------
class Output:
    def __init__(self, as_json: bool, quiet: bool = False):
        self.as_json = as_json
        self.quiet = quiet
        self.result: dict = {}

    def say(self, text: str) -> None:
        """Progress and prose for people: stderr in --json mode, stdout otherwise; none with -q."""
        if not self.quiet:
            print(text, file=sys.stderr if self.as_json else sys.stdout, flush=True)

    def emit(self, result: dict, text: Callable[[dict], str] | None = None) -> None:
        self.result = result
        if self.as_json:
            print(cli.dumps(timed(result)))
        elif text is not None:
            print(text(result))
        else:
            for key, value in result.items():
                print(f"{key:18} {value.hex() if isinstance(value, bytes) else cli._plain(value)}")


# ---- time -------------------------------------------------------------------------------------
# handset times (core seconds) that the JSON output carries as ISO 8601 strings
TIME_KEYS = ("now", "deadline", "service_due", "calibration_due", "next_service", "started",
             "finished", "until", "expires")
RECORD_TIME_KEYS = ("time", "from_time", "to_time")  # a record's time: 0 is a moment, not 'never'



def core_seconds(moment: datetime) -> int:
    return coretime.from_unix(moment.timestamp())


def core_to_text(seconds: int | None) -> str:
    return cli.core_text(seconds)


def duration_text(seconds: int | None) -> str:
    return cli.duration(seconds)


def timed(result: dict) -> dict:
    """A copy of `result` with every handset time (TIME_KEYS, RECORD_TIME_KEYS, also in nested
    dicts and lists of dicts) in ISO 8601: what --json prints. None for 'never'."""
    out = {}
    for key, value in result.items():
        number = isinstance(value, int) and not isinstance(value, bool)
        if key in TIME_KEYS and (number or value is None):
            out[key] = cli.core_iso(value)
        elif key in RECORD_TIME_KEYS and number:
            out[key] = cli.record_time(value)
        elif isinstance(value, dict):
            out[key] = timed(value)
        elif isinstance(value, list):
            out[key] = [timed(x) if isinstance(x, dict) else x for x in value]
        else:
            out[key] = value
    return out


# ---- connecting ---------------------------------------------------------------------------------
HOST_PORT = re.compile(r"^(?:[\w.-]+|\[[0-9a-fA-F:]+\]):\d{1,5}$")


def connect(args) -> DeviceClient:
    try:
        url = resolve(args.port)
    except PortError as exc:
        raise ToolError(exitcodes.NO_DEVICE, str(exc)) from None
    if HOST_PORT.match(url) and not os.path.exists(url):
        raise ToolError(exitcodes.NO_DEVICE, f"--port {url}: a network port is a pyserial URL: "
                        f"use --port socket://{url}")
    client = DeviceClient.open(url, baudrate=args.baud, timeout=args.timeout)
    client.hello()
    return client


# ---- key material -------------------------------------------------------------------------------
def key_dir(args) -> Path:
    return Path(args.keys or os.environ.get(KEY_DIR_ENV) or Path.home() / ".lci777")


def load_signer(args):
    from host_tools import keys

    path = Path(args.key) if getattr(args, "key", None) else key_dir(args) / keys.ROOT_KEY_FILE
    try:
        return keys.load_signer(path)
    except (OSError, ValueError) as exc:
        text = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
        raise ToolError(exitcodes.CREDENTIAL, f"cannot load signing key {text}") from None


def load_master(args) -> bytes:
    from host_tools import keys

    path = Path(args.master) if getattr(args, "master", None) else key_dir(args) / keys.MASTER_SECRET_FILE
    try:
        return keys.load_master_secret(path)
    except (OSError, ValueError) as exc:
        text = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
        raise ToolError(exitcodes.CREDENTIAL, f"cannot load master secret {text}") from None


def mint_for(client: DeviceClient, args, action: str, token_args: dict, *, ttl: int = 600,
             now: int | None = None, not_before: int | None = None) -> bytes:
    """A token for this handset, minted on the spot with the technician's key."""
    from host_tools import tokens

    signer = load_signer(args)
    if now is None:
        now = client.status()["now"]
    if not_before is None:
        # the handset's clock may read a second behind the STATUS it just sent
        not_before = now - CLOCK_SLACK_S
    try:
        return tokens.mint(
            signer,
            client.serial,
            action,
            token_args,
            now=now,
            ttl=ttl,
            not_before=not_before,
            session_nonce=client.session_nonce,
        )
    except tokens.MintError as exc:
        raise ToolError(exitcodes.CREDENTIAL, str(exc)) from None


def outbox_for(args):
    from host_tools.outbox import FOLDER, Outbox

    return Outbox(key_dir(args) / FOLDER)


def apply_minted(client: DeviceClient, args, out: Output, command: str,
                 mint: Callable[[DeviceClient], bytes]) -> dict:
    """Mint a token for `command` and present it so that a lost reply never applies it twice.

    A token of the same command whose answer was lost on an earlier run is presented first
    (the laptop's outbox): "already applied" ends the command there. Every retry presents the
    same token; only a token the handset proves it never applied (its USB session is gone)
    is replaced by a new one."""
    from host_tools.delivery import deliver

    box = outbox_for(args)
    serial = client.serial

    def fresh(c: DeviceClient) -> bytes:
        token = mint(c)
        box.put(serial, command, token)  # before it goes out: a killed run leaves it here
        return token

    pending = box.get(serial, command)
    try:
        if pending is not None:
            out.say("an earlier run of this command got no answer: asking the handset about it first")
            # "already applied" ends it; a token the handset proves it never applied (bound to
            # a session that is gone) is replaced; an ambiguous refusal is an unknown outcome
            result = deliver(client, pending, remint=fresh, say=out.say, uncertain=True)
        else:
            result = deliver(client, fresh(client), remint=fresh, say=out.say)
    except OutcomeUnknown as exc:
        if exc.final:
            box.drop(serial, command)  # the handset's answer will not change: status tells
        raise
    except Nack:
        box.drop(serial, command)
        raise
    box.drop(serial, command)
    return result


def read_token_file(path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ToolError(exitcodes.CREDENTIAL, f"cannot read token {path}: {exc.strerror}") from None
    text = data.strip()
    try:  # tokens travel as hex text (email, tickets) or raw bytes
        return bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return data


# ---- commands -----------------------------------------------------------------------------------
def cmd_info(args, out: Output) -> None:
    with connect(args) as client:
        info = dict(client.info or {})
        info["session_nonce"] = info["session_nonce"].hex()
        info.pop("caps", None)
    out.emit(info)


def _status_text(s: dict) -> str:
    lines = [
        f"compliance        {s['compliance']}" + (f" ({', '.join(s['causes'])})" if s["causes"] else ""),
        f"session           {s['session']}",
        f"display           [{s['display'][0]:16}] [{s['display'][1]:16}]",
        f"device clock      {core_to_text(s['now'])}",
    ]
    if s["deadline"]:
        lines.append(f"deadline          {core_to_text(s['deadline'])} (in {duration_text(s['deadline_left_s'])})")
    lines += [
        f"service due       {core_to_text(s['service_due'])}",
        f"calibration due   {core_to_text(s['calibration_due'])}",
        f"violations        {s['violations']}",
        f"relay / alarm     {'closed' if s['relay_closed'] else 'open'} / {'ON' if s['alarm'] else 'off'}",
        f"event log         {s['log_records']} records, {s['log_free_pct']} % free",
    ]
    if s["hold_left_s"]:
        lines.append(f"temporary lockout {duration_text(s['hold_left_s'])} left")
    if s["override_left_s"]:
        lines.append(f"code override     {duration_text(s['override_left_s'])} left")
    return "\n".join(lines)


def cmd_status(args, out: Output) -> None:
    with connect(args) as client:
        status = client.status()
        status["serial"] = client.serial
        status["firmware"] = (client.info or {}).get("firmware")
    out.emit(status, lambda s: f"handset           {s['serial']} (firmware {s['firmware']})\n" + _status_text(s))


def cmd_log_download(args, out: Output) -> None:
    from host_tools.log_download import LogMismatch, download

    try:
        report = download(
            lambda: connect(args),
            Path(args.out),
            fmt=args.format,
            start=args.start,
            progress=not (args.json or args.quiet),
            reconnects=args.reconnects,
            say=out.say,
        )
    except LogMismatch as exc:
        raise ToolError(exitcodes.VERIFY_FAILED, str(exc)) from None
    out.emit(report, lambda r: (
        f"{r['records']} records ({r['first']}..{r['last']}) in {r['path']}; "
        f"chain {'verified' if r['chain_ok'] else 'BROKEN: ' + r['chain_problem']}"
        + (f"; resumed {cli.plural(r['resumes'], 'time')}" if r["resumes"] else "")
    ))
    if not report["chain_ok"]:
        raise ToolError(exitcodes.VERIFY_FAILED, f"log chain broken: {report['chain_problem']}")


def cmd_log_verify(args, out: Output) -> None:
    from host_tools import logverify

    try:
        report = logverify.verify_file(Path(args.file))
        if args.summary:
            report["summary"] = logverify.summary(logverify.load_records(Path(args.file)))
    except logverify.LogInputError as exc:
        raise ToolError(exitcodes.USAGE, str(exc)) from None

    def text(r: dict) -> str:
        line = f"{r['records']} records in {r['path']}: chain " + (
            "verified" if r["chain_ok"] else f"BROKEN at record {r['broken_at']}: {r['chain_problem']}")
        if not r["fields_ok"]:
            line += f"; decoded fields do NOT match the raw bytes: {r['field_problem']}"
        if r.get("summary"):
            line += "\n" + summary_text(r["summary"])
        return line

    out.emit(report, text)
    if not report["chain_ok"]:
        raise ToolError(exitcodes.VERIFY_FAILED, f"log chain broken: {report['chain_problem']}")
    if not report["fields_ok"]:
        raise ToolError(exitcodes.VERIFY_FAILED, f"log rows edited: {report['field_problem']}")


def summary_text(summary: dict) -> str:
    """The event summary for people: one line a fact, tests one line each, times in ISO 8601."""
    def when(t):
        return "-" if t is None else cli.record_time(t)

    lines = []
    for key, value in summary.items():
        label = key.replace("_", " ")
        if key in ("from_time", "to_time"):
            lines.append(f"  {label:26} {when(value)}")
        elif key == "operated_seconds":
            lines.append(f"  {'time operated':26} {cli.duration(value)}")
        elif isinstance(value, list):
            lines.append(f"  {label:26} {len(value)}")
            for t in value:
                lines.append(f"    record {t['index']:<6} {when(t['time'])}  BrAC {t['brac'] / 10000:.3f}  "
                             f"{'pass' if t['passed'] else 'FAIL'}")
        else:
            lines.append(f"  {label:26} {cli._plain(value)}")
    return "\n".join(lines)


def check_reference(value: float) -> int:
    """The dry-gas reference in protocol units, refused on the laptop before anything opens."""
    if not 0.030 <= value <= 0.050:
        raise ToolError(exitcodes.USAGE, f"--reference {value:g}: the dry-gas standard must be "
                        "0.030 to 0.050 g/210L")
    return brac_units(value)


def cmd_calibrate(args, out: Output) -> None:
    from host_tools.visit import Visit, VisitIncomplete

    reference = check_reference(args.reference)
    signer = load_signer(args)  # a missing or bad key stops here, before a session opens
    with connect(args) as client:
        visit = Visit(client, signer_loader=lambda: signer, say=out.say,
                      confirm=_confirmer(args))
        try:
            receipt = visit.calibrate(reference, open_session=True, close_session=True)
        except VisitIncomplete as exc:
            out.emit(exc.receipt, _receipt_text)
            raise ToolError(_incomplete_code(exc), str(exc)) from None
    out.emit(receipt, _receipt_text)
    if not receipt["passed"]:
        raise ToolError(exitcodes.VERIFY_FAILED, "calibration failed: the handset needs service")


def _incomplete_code(exc) -> int:
    """A visit that stopped on a step whose answer was lost: the outcome is unknown; one the
    handset refused before anything was done (tokens of another provider's key): a refusal."""
    if exc.outcome_unknown:
        return exitcodes.UNKNOWN_OUTCOME
    if isinstance(exc.__cause__, Nack) and not exc.receipt.get("done"):
        return exitcodes.REFUSED
    return exitcodes.INCOMPLETE


def _confirmer(args):
    if args.yes or not sys.stdin.isatty():
        return lambda prompt: None

    def confirm(prompt: str) -> None:
        input(prompt + " [Enter] ")

    return confirm


def _receipt_text(r: dict) -> str:
    from host_tools.visit import receipt_text

    return receipt_text(r)


def cmd_unlock(args, out: Output) -> None:
    from host_tools.delivery import deliver

    if not args.token:
        load_signer(args)  # a missing or bad key stops here, before the handset is touched
    with connect(args) as client:
        if args.token:
            result = deliver(client, read_token_file(args.token), say=out.say)
        else:
            seconds = 0 if args.permanent else int(round(args.hours * 3600))
            if not args.permanent and not 60 <= seconds <= 400 * coretime.DAY:
                # 0 seconds means "for good" in a token: a window must never round to it
                raise ToolError(exitcodes.USAGE, f"--hours {args.hours:g}: an unlock window is "
                                "1 minute to 400 days (--permanent for good)")
            result = apply_minted(client, args, out, f"unlock {seconds}",
                                  lambda c: mint_for(c, args, "unlock", {"seconds": seconds}))
        status = client.status()
    out.emit({"action": result["action"], "detail": result["detail"], "already_applied": result["already"],
              "compliance": status["compliance"]},
             lambda r: f"{r['detail']} — handset now {r['compliance']}")


def cmd_token_apply(args, out: Output) -> None:
    from host_tools.delivery import deliver

    token = read_token_file(args.file)
    with connect(args) as client:
        result = deliver(client, token, say=out.say)
        status = client.status()
    out.emit({"action": result["action"], "detail": result["detail"], "already_applied": result["already"],
              "compliance": status["compliance"], "causes": status["causes"]},
             lambda r: f"{r['detail'] if r['action'] in r['detail'] else r['action'] + ': ' + r['detail']}"
                       f" — handset now {r['compliance']}")


def cmd_code_issue(args, out: Output) -> None:
    from host_tools import codes

    master = load_master(args)
    try:
        request = codes.describe_request(args.request)
        code = codes.answer(master, args.serial, args.request, args.action, lockout=args.lockout)
    except codes.CodeError as exc:
        raise ToolError(exitcodes.CREDENTIAL, str(exc)) from None
    out.emit({"serial": args.serial, "request": request["digits"], "action": args.action, "code": code},
             lambda r: f"code for {r['serial']} ({r['action']}): {r['code'][:4]} {r['code'][4:]}")


def cmd_code_request(args, out: Output) -> None:
    with connect(args) as client:
        request = client.code_request(args.action)
    out.emit({"serial": client.serial, "action": args.action, "request": request},
             lambda r: f"request code on {r['serial']} ({r['action']}): {r['request']}")


def cmd_code_enter(args, out: Output) -> None:
    code = "".join(args.code.split())
    if not code.isdigit():
        raise ToolError(exitcodes.USAGE, f"{args.code!r} is not a keypad code (digits only)")
    with connect(args) as client:
        result = client.enter_code(code)
        status = client.status()
    out.emit({"serial": client.serial, "action": result["action"], "until": result["until"] or None,
              "compliance": status["compliance"]},
             lambda r: f"code accepted on {r['serial']}: {r['action'].replace('_', ' ')}"
                       + (f" until {core_to_text(r['until'])}" if r["until"] else "")
                       + f" — handset now {r['compliance']}")


def cmd_work_order_issue(args, out: Output) -> None:
    from host_tools.work_orders import issue

    path = issue(load_signer(args), args.serial, args.order, args.id, args.vehicle,
                 Path(args.out), days=args.days)
    out.emit({"path": str(path), "serial": args.serial, "order": args.order, "id": args.id},
             lambda r: f"work order {r['id']} ({r['order']}) for {r['serial']} written to {r['path']}")


def cmd_work_order_apply(args, out: Output) -> None:
    from host_tools.work_orders import WorkOrderError, load

    try:
        order = load(Path(args.file))
    except WorkOrderError as exc:
        raise ToolError(exitcodes.CREDENTIAL, str(exc)) from None
    from host_tools.delivery import deliver

    with connect(args) as client:
        client.expect_serial(order["serial"])
        result = deliver(client, order["token"], say=out.say)
        status = client.status()
    out.emit({"id": order["id"], "order": order["order"], "detail": result["detail"],
              "already_applied": result["already"], "compliance": status["compliance"]},
             lambda r: f"work order {r['id']} ({r['order']}) {_applied_text(r)} — handset now {r['compliance']}")


def _applied_text(r: dict) -> str:
    """'applied', with the handset's words only when they add to the order's own ('vehicle_switch
    WO-26-0107' says it again)."""
    if r["already_applied"]:
        return "was already applied"
    said = r["detail"].replace(r["order"], "").replace(r["id"], "").strip(" :-")
    return f"applied: {r['detail']}" if said else "applied"


def cmd_set_time(args, out: Output) -> None:
    moment = datetime.now(UTC) if args.time == "now" else _parse_time(args.time)
    target = core_seconds(moment)

    def mint(client: DeviceClient) -> bytes:
        now = client.status()["now"]
        # valid on both sides of the move, so the same token can be presented again after it
        return mint_for(client, args, "set_time", {"time": target}, now=now,
                        not_before=min(now, target) - CLOCK_SLACK_S, ttl=max(0, target - now) + 600)

    with connect(args) as client:
        before = client.status()["now"]
        result = apply_minted(client, args, out, f"set-time {args.time}", mint)
        judged = client.status()["now"]  # never behind the handset's high-water mark
    # the handset's wall clock is now `target`; its deadlines and token validity never go
    # back with it (STATUS now stays at the latest time it had seen until the clock passes it)
    out.emit({"before": core_to_text(before), "after": core_to_text(target), "moved_s": target - before,
              "deadline_clock": core_to_text(judged), "already_applied": result["already"]},
             lambda r: ("already applied: " if r["already_applied"] else "")
             + f"clock {r['before']} -> {r['after']} ({r['moved_s']:+d} s)"
             + ("" if r["deadline_clock"] == r["after"] else
                f"; deadlines and tokens keep the handset's latest time {r['deadline_clock']}"))


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ToolError(exitcodes.USAGE, f"not a time: {text!r} (use ISO 8601 or 'now')") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_keygen(args, out: Output) -> None:
    from host_tools import keys

    try:
        made = keys.keygen(key_dir(args) if not args.dir else Path(args.dir), overwrite=args.force)
    except (OSError, ValueError) as exc:
        raise ToolError(exitcodes.CREDENTIAL, str(exc)) from None
    out.emit({"root_key": str(made["root_key"]), "root_public": str(made["root_public"]),
              "master_secret": str(made["master_secret"]), "root_id": made["root_id"]},
             lambda r: f"root key {r['root_id']}: {r['root_key']}, {r['root_public']}, {r['master_secret']} (0600)")


def cmd_delegate(args, out: Output) -> None:
    from host_tools import keys

    root = Path(args.root) if args.root else key_dir(args) / keys.ROOT_KEY_FILE
    try:
        key = keys.delegate_to_file(root, Path(args.out), args.id, args.scopes,
                                    days=args.days, overwrite=args.force)
    except (OSError, ValueError) as exc:
        raise ToolError(exitcodes.CREDENTIAL, str(exc)) from None
    out.emit({"key_id": key.key_id, "scopes": list(key.scopes), "expires": key.expires, "path": args.out},
             lambda r: f"delegated key {r['key_id']} ({', '.join(r['scopes'])}) until {core_to_text(r['expires'])}: {r['path']}")


def cmd_provision(args, out: Output) -> None:
    from host_tools import keys

    directory = key_dir(args)
    try:
        root_public = keys.load_public_key(directory / keys.ROOT_PUBLIC_FILE)
        fields = keys.provision_fields(args.serial, root_public, load_master(args))
    except (OSError, ValueError) as exc:
        raise ToolError(exitcodes.CREDENTIAL, str(exc)) from None
    with connect(args) as client:
        serial = client.provision(**fields)
        client.hello()
    from protocol.tokens import root_id

    out.emit({"serial": serial, "root_id": root_id(root_public).hex()},
             lambda r: f"provisioned {r['serial']} (root key {r['root_id']})")


def cmd_service(args, out: Output) -> None:
    from host_tools.visit import Visit, VisitIncomplete

    reference = check_reference(args.reference)
    signer = load_signer(args)  # a missing or bad key stops here, before a session opens
    if args.upload and not args.upload.startswith(("http://", "https://")):
        raise ToolError(exitcodes.USAGE, f"--upload {args.upload}: expected an http:// or "
                        f"https:// URL")
    if args.upload and not getattr(signer, "certificate", b""):
        raise ToolError(exitcodes.CREDENTIAL, "--upload signs with the center's delegated key: "
                        "give it with --key (not the provider's root key)")
    with connect(args) as client:
        client.expect_serial(args.serial)
        visit = Visit(client, signer_loader=lambda: signer, say=out.say,
                      confirm=_confirmer(args))
        if args.out:
            log_path = Path(args.out)
        else:  # beside the keys, never the working folder: KEYS/logs/SERIAL-UTCSTAMP.FORMAT
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            log_path = key_dir(args) / "logs" / f"{client.serial}-{stamp}.{args.format}"
            log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            receipt = visit.service(
                reference=reference,
                next_service_days=args.next_service_days,
                log_path=log_path,
                log_format=args.format,
                progress=not (args.json or args.quiet),
            )
        except VisitIncomplete as exc:
            out.emit(exc.receipt, _receipt_text)
            raise ToolError(_incomplete_code(exc), str(exc)) from None
    if args.upload:
        receipt["upload"] = _upload_visit(args, signer, receipt, log_path, out)
    out.emit(receipt, _receipt_text)
    if not receipt["passed"]:
        raise ToolError(exitcodes.VERIFY_FAILED, "service visit done, but the calibration failed")
    if args.upload and "error" in receipt["upload"]:
        raise ToolError(exitcodes.UPLOAD_FAILED, receipt["upload"]["error"])


def _upload_visit(args, signer, receipt: dict, log_path: Path, out: Output) -> dict:
    """Push the receipt and the verified log to the provider's server, signed with the
    center's delegated key (host_tools/visit_upload.py). The visit is done whatever happens
    here: a failure is reported in the receipt and by the exit code."""
    from host_tools.visit_upload import UploadError, upload

    try:
        log_text = log_path.read_text()
    except OSError as exc:
        return {"error": f"cannot read the visit's log {log_path}: {exc.strerror}"}
    out.say(f"uploading the receipt and the log to {args.upload}")
    try:
        answer = upload(args.upload, signer, kind="calibration", receipt=cli_safe(receipt),
                        log_text=log_text, log_format=args.format)
    except UploadError as exc:
        return {"error": str(exc)}
    out.say(f"visit {answer.get('visit')} filed with client {answer.get('client')}"
            + ("" if answer.get("filed") else " (it was already filed)"))
    return answer


def cli_safe(receipt: dict) -> dict:
    """The receipt as the server stores it: JSON values, handset times in ISO 8601."""
    import json

    return json.loads(cli.dumps(timed(receipt)))


def cmd_devs(args, out: Output) -> None:
    from serial.tools import list_ports

    from host_tools.ports import KNOWN_USB_IDS

    ports = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        ids = f"{port.vid:04x}:{port.pid:04x}" if port.vid is not None else None
        ports.append({"device": port.device, "usb_id": ids, "serial_number": port.serial_number,
                      "description": port.description, "manufacturer": port.manufacturer,
                      "lci777": KNOWN_USB_IDS.get((port.vid, port.pid))})
    if args.json:
        out.emit({"ports": ports})
        return
    if not ports:
        out.emit({}, lambda r: "no serial ports (for the simulator: --port socket://127.0.0.1:PORT)")
        return
    rows = [[p["device"], p["usb_id"] or "-", p["serial_number"] or "-", p["lci777"] or (p["description"] if p["description"] != "n/a" else "-")]
            for p in ports]
    text = cli.table(["port", "usb id", "serial number", "board"], rows)
    out.emit({"ports": ports}, lambda r: text if text is not None else "")


# ---- argument parsing ---------------------------------------------------------------------------
ORDERS = ["installation", "removal", "exchange", "vehicle_switch", "handset_exchange"]
SCOPES = ["unlock", "calibrate", "set_time", "billing", "work_order"]


def _scopes(text: str) -> list[str]:
    scopes = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in scopes if x not in SCOPES]
    if bad or not scopes:
        raise argparse.ArgumentTypeError(f"unknown scope {', '.join(bad) or '(none)'}; scopes: {', '.join(SCOPES)}")
    return scopes


def build_parser() -> argparse.ArgumentParser:
    from protocol.keycodes import CODE_ACTIONS

    parser = argparse.ArgumentParser(
        prog="lci-tool",
        description="The LCI-777 technician tool: a whole service visit over the USB cable.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.add_version(parser, "lci-tool")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(group, name, func, help_text, **kw):
        p = group.add_parser(name, help=help_text, description=help_text, **kw)
        p.set_defaults(func=func)
        return p

    def key_option(p, scope):
        p.add_argument("--key", metavar="FILE",
                       help=f"technician key file with scope {scope} (default: the key folder's root.key)")

    add(sub, "devs", cmd_devs, "list the serial ports; LCI-777 handsets by USB id (like mpremote devs)")
    add(sub, "info", cmd_info, "identity: serial, firmware, protocol, capabilities")
    add(sub, "status", cmd_status, "compliance and driving state, deadlines, counts, display")

    log = sub.add_parser("log", help="download or verify the event log", description="the event log")
    log_sub = log.add_subparsers(dest="log_command", required=True, metavar="ACTION")
    p = add(log_sub, "download", cmd_log_download, "download the event log (resumable), verify its chain")
    p.add_argument("--out", required=True, metavar="FILE", help="file to write (an existing one is resumed)")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="file format (default jsonl)")
    p.add_argument("--from", dest="start", type=int, default=None, metavar="INDEX", help="first record index")
    p.add_argument("--reconnects", type=int, default=5, help="reconnect attempts after a drop (default 5)")
    p = add(log_sub, "verify", cmd_log_verify, "verify a downloaded log file's hash chain")
    p.add_argument("file", help="a download (.jsonl/.csv), packed records, or a folder of flash segments")
    p.add_argument("--summary", action="store_true", help="add the WAC 308-107-080 event summary")

    p = add(sub, "calibrate", cmd_calibrate, "guided calibration against a dry-gas reference")
    p.add_argument("--reference", type=float, required=True, help="dry-gas BrAC in g/210L (0.030-0.050)")
    key_option(p, "calibrate")
    p.add_argument("--yes", action="store_true", help="do not wait for Enter between steps")

    p = add(sub, "unlock", cmd_unlock, "lift a lockout with a signed token")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--token", metavar="FILE", help="token file from the back office (hex or raw)")
    group.add_argument("--hours", type=float, default=4.0, help="minted unlock window (default 4 h)")
    group.add_argument("--permanent", action="store_true", help="minted unlock until the next recall")
    key_option(p, "unlock")

    token = sub.add_parser("token", help="signed tokens", description="signed tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    p = add(token_sub, "apply", cmd_token_apply,
            "present any signed token file (back-office directive: recall, lockout, clear; an unlock)")
    p.add_argument("file", help="token file (hex text or raw bytes), e.g. from `lci-billing directives export`")

    code = sub.add_parser("code", help="keypad codes", description="keypad codes")
    code_sub = code.add_subparsers(dest="code_command", required=True, metavar="ACTION")
    p = add(code_sub, "issue", cmd_code_issue, "answer a client's keypad request code (back office)")
    p.add_argument("--serial", required=True, help="the handset's serial number")
    p.add_argument("--request", required=True, help="the request code the handset shows")
    p.add_argument("--action", choices=CODE_ACTIONS, default="unlock", help="what the code allows (default unlock)")
    p.add_argument("--lockout", type=int, default=None,
                   help="for --action clear: the directive number (seq) of the lockout the code clears")
    p.add_argument("--master", metavar="FILE", help="master secret file (default: the key folder's)")
    p = add(code_sub, "request", cmd_code_request, "ask the handset for a request code")
    p.add_argument("--action", choices=CODE_ACTIONS, default="unlock", help="what to ask for (default unlock)")
    p = add(code_sub, "enter", cmd_code_enter, "type the provider's answer code over the cable")
    p.add_argument("code", help="the numeric code (spaces allowed)")

    wo = sub.add_parser("work-order", help="signed work orders", description="signed work orders")
    wo_sub = wo.add_subparsers(dest="wo_command", required=True, metavar="ACTION")
    p = add(wo_sub, "apply", cmd_work_order_apply, "apply a signed work order file to this handset")
    p.add_argument("file", help="work order file (from `lci-tool work-order issue`)")
    p = add(wo_sub, "issue", cmd_work_order_issue, "sign a work order (compliance department)")
    p.add_argument("--serial", required=True, help="the handset it is for")
    p.add_argument("--order", required=True, choices=ORDERS, help="what the technician may do")
    p.add_argument("--id", required=True, help="work order number, e.g. WO-26-0105")
    p.add_argument("--vehicle", default="", help="vehicle (VIN or plate) the handset goes into")
    p.add_argument("--days", type=int, default=30, help="validity in days (default 30)")
    key_option(p, "work_order")
    p.add_argument("--out", required=True, metavar="FILE", help="work order file to write")

    p = add(sub, "set-time", cmd_set_time, "set the handset's clock (signed, bound to this session)")
    p.add_argument("--time", default="now", help="ISO 8601 time, or 'now' (default)")
    key_option(p, "set_time")

    p = add(sub, "keygen", cmd_keygen, "new provider root key and master secret (files 0600)")
    p.add_argument("--dir", help="folder (default: the key folder)")
    p.add_argument("--force", action="store_true", help="replace existing key files")

    p = add(sub, "delegate", cmd_delegate, "delegate a technician or service-center key from the root")
    p.add_argument("--id", required=True, help="key id, e.g. tech-jane or center-0042")
    p.add_argument("--scopes", required=True, type=_scopes, help=f"comma list of: {','.join(SCOPES)}")
    p.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    p.add_argument("--root", metavar="FILE", help="root key file (default: the key folder's root.key)")
    p.add_argument("--out", required=True, metavar="FILE", help="delegated key file to write")
    p.add_argument("--force", action="store_true", help="replace an existing key file")

    p = add(sub, "provision", cmd_provision, "write serial, root public key and keypad secret (factory mode, once)")
    p.add_argument("--serial", required=True, help="the serial number to give the handset")
    p.add_argument("--master", metavar="FILE", help="master secret file (default: the key folder's)")

    p = add(sub, "service", cmd_service,
            "a whole visit: log download + verify, calibrate, clear recall, next service date, receipt")
    p.add_argument("--reference", type=float, default=0.040, help="dry-gas BrAC (default 0.040)")
    p.add_argument("--next-service-days", type=int, default=None, help="default: the handset's interval")
    p.add_argument("--serial", help="refuse to work on any other handset")
    p.add_argument("--out", "--log-out", dest="out", metavar="FILE",
                   help="where to write the log (default: KEYS/logs/SERIAL-UTCTIME.FORMAT)")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="log file format (default jsonl)")
    key_option(p, "calibrate")
    p.add_argument("--yes", action="store_true", help="do not wait for Enter between steps")
    p.add_argument("--upload", metavar="URL",
                   help="then push the receipt and the verified log to the provider's server "
                        "(e.g. https://portal.example/service/visits/upload/), signed with the "
                        "center's delegated --key")

    # accepted before or after the command
    cli.everywhere(parser, "--port", help="device path or pyserial URL, e.g. socket://127.0.0.1:7777 "
                   "(default: $LCI_PORT, else auto-detect by USB id)")
    cli.everywhere(parser, "--baud", type=int, help="line rate (default 115200)")
    cli.everywhere(parser, "--timeout", type=float, help="seconds per try before a retransmission (default 0.5)")
    cli.everywhere(parser, "--keys", metavar="DIR", help=f"key folder (default: ${KEY_DIR_ENV}, else ~/.lci777)")
    cli.add_output_options(parser, verbose_help="print every frame on the wire (stderr)")
    return parser


DEFAULTS = {"port": None, "baud": 115200, "timeout": 0.5, "keys": None, **cli.OUTPUT_DEFAULTS}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    cli.completion(parser)
    args = cli.defaults(parser.parse_args(argv), DEFAULTS)
    out = Output(args.json, args.quiet)
    if args.verbose:
        from host_tools.link import Link

        Link.trace = cli.frame_tracer()
    try:
        return cli.run("lci-tool", lambda: _run(args, out))
    finally:
        if args.verbose:
            from host_tools.link import Link

            Link.trace = None


def _run(args, out: Output) -> int:
    try:
        args.func(args, out)
        return exitcodes.OK
    except ToolError as exc:
        return _fail(exc.code, str(exc), out)
    except NoSuchPort as exc:
        return _fail(exitcodes.NO_DEVICE, str(exc), out)
    except WrongDevice as exc:
        return _fail(exitcodes.WRONG_DEVICE, str(exc), out)
    except OutcomeUnknown as exc:
        return _fail(exitcodes.UNKNOWN_OUTCOME, str(exc), out)
    except (LinkTimeout, LinkLost) as exc:
        if exc.maybe_applied:  # a changing request went out; its answer never came
            return _fail(exitcodes.UNKNOWN_OUTCOME, f"{UNKNOWN_TEXT} ({exc})", out)
        return _fail(exitcodes.TIMEOUT, str(exc), out)
    except Nack as exc:
        return _fail(exitcodes.REFUSED, str(exc), out)
    except (ProtocolVersionError, BadReply) as exc:
        return _fail(exitcodes.PROTOCOL, str(exc), out)
    except BadRequest as exc:
        return _fail(exitcodes.PROTOCOL, str(exc), out)
    except LinkError as exc:  # any other link failure: the handset is not answering
        return _fail(exitcodes.TIMEOUT, str(exc), out)
    except BrokenPipeError:
        raise  # the reader left: cli.run ends with 141
    except (OSError, ValueError) as exc:
        # files (an --out folder that does not exist, a log file that is not one), and
        # the typed errors of keys, tokens, work orders and log files (all ValueErrors)
        text = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.filename else str(exc)
        code = exitcodes.CREDENTIAL if type(exc).__name__ in _CREDENTIAL_ERRORS else exitcodes.USAGE
        return _fail(code, text.splitlines()[0] if text else type(exc).__name__, out)


_CREDENTIAL_ERRORS = ("KeysError", "MintError", "WorkOrderError", "CodeError")


def _fail(code: int, text: str, out: Output) -> int:
    cli.error("lci-tool", text)
    if out.as_json and not out.result:
        print(cli.dumps({"error": text, "exit_code": code}))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
