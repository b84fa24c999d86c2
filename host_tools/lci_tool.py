"""lci-tool: the technician's command line for the LCI-777 handset, over the USB cable.

Every command takes --port (a device path or any pyserial URL; else $LCI_PORT; else the one
attached LCI-777 found by USB id), --json (one JSON object on stdout), and exits with a
documented code (host_tools/exitcodes.py). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from host_tools import exitcodes
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

EPILOG = """\
examples:
  lci-tool info                              the handset on the one USB port found
  lci-tool --port /dev/ttyACM0 status --json
  lci-tool --port socket://127.0.0.1:7777 log download --out visit.jsonl
  lci-tool log verify visit.jsonl
  lci-tool calibrate --reference 0.040 --key tech.key
  lci-tool unlock --key tech.key --hours 4      mint and present an unlock token
  lci-tool unlock --token unlock.tok            present a token from the back office
  lci-tool code issue --serial LCI7-000123 --request "1042 7781 93" --action unlock
  lci-tool work-order apply removal.toml --key tech.key
  lci-tool service --reference 0.040 --key tech.key --next-service-days 60
  lci-tool keygen --dir ~/.lci777            provider root key + master secret (0600)

exit codes:
""" + "\n".join(f"  {code:3d}  {text}" for code, text in exitcodes.TABLE)

KEY_DIR_ENV = "LCI_KEYS"
CLOCK_SLACK_S = 60  # a minted token is valid from this long before the handset's STATUS time


class ToolError(Exception):
    """A failure with its exit code; str() is the one line printed."""

    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code


def version() -> str:
    try:
        return metadata.version("lci777")
    except metadata.PackageNotFoundError:
        return "0+unknown"


# ---- output -----------------------------------------------------------------------------------
class Output:
    def __init__(self, as_json: bool):
        self.as_json = as_json
        self.result: dict = {}

    def say(self, text: str) -> None:
        """Progress and prose for people: stderr in --json mode, stdout otherwise."""
        print(text, file=sys.stderr if self.as_json else sys.stdout, flush=True)

    def emit(self, result: dict, text: Callable[[dict], str] | None = None) -> None:
        self.result = result
        if self.as_json:
            print(json.dumps(result, default=_jsonable, sort_keys=True))
        elif text is not None:
            print(text(result))
        else:
            for key, value in result.items():
                print(f"{key:18} {_jsonable(value) if isinstance(value, bytes) else value}")


def _jsonable(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


# ---- time -------------------------------------------------------------------------------------
def core_seconds(moment: datetime) -> int:
    from firmware.hal import EPOCH_UNIX

    return int(moment.timestamp()) - EPOCH_UNIX


def core_to_text(seconds: int | None) -> str:
    if not seconds:
        return "-"
    from firmware.hal import EPOCH_UNIX

    return datetime.fromtimestamp(seconds + EPOCH_UNIX, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration_text(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {rest % 60} s"


# ---- connecting ---------------------------------------------------------------------------------
def connect(args) -> DeviceClient:
    try:
        url = resolve(args.port)
    except PortError as exc:
        raise ToolError(exitcodes.NO_DEVICE, str(exc)) from None
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
        raise ToolError(exitcodes.CREDENTIAL, f"cannot load signing key {path}: {exc}") from None


def load_master(args) -> bytes:
    from host_tools import keys

    path = Path(args.master) if getattr(args, "master", None) else key_dir(args) / keys.MASTER_SECRET_FILE
    try:
        return keys.load_master_secret(path)
    except (OSError, ValueError) as exc:
        raise ToolError(exitcodes.CREDENTIAL, f"cannot load master secret {path}: {exc}") from None


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
            progress=not args.json and not args.quiet,
            reconnects=args.reconnects,
            say=out.say,
        )
    except LogMismatch as exc:
        raise ToolError(exitcodes.VERIFY_FAILED, str(exc)) from None
    out.emit(report, lambda r: (
        f"{r['records']} records ({r['first']}..{r['last']}) in {r['path']}; "
        f"chain {'verified' if r['chain_ok'] else 'BROKEN: ' + r['chain_problem']}"
        + (f"; resumed {r['resumes']} time(s)" if r["resumes"] else "")
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
            line += "\n" + json.dumps(r["summary"], indent=1, default=str)
        return line

    out.emit(report, text)
    if not report["chain_ok"]:
        raise ToolError(exitcodes.VERIFY_FAILED, f"log chain broken: {report['chain_problem']}")
    if not report["fields_ok"]:
        raise ToolError(exitcodes.VERIFY_FAILED, f"log rows edited: {report['field_problem']}")


def check_reference(value: float) -> int:
    """The dry-gas reference in protocol units, refused on the laptop before anything opens."""
    if not 0.030 <= value <= 0.050:
        raise ToolError(exitcodes.USAGE, f"--reference {value:g}: the dry-gas standard must be "
                        "0.030 to 0.050 g/210L")
    return brac_units(value)


def cmd_calibrate(args, out: Output) -> None:
    from host_tools.visit import Visit, VisitIncomplete

    reference = check_reference(args.reference)
    with connect(args) as client:
        visit = Visit(client, signer_loader=lambda: load_signer(args), say=out.say,
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
    """A visit that stopped on a step whose answer was lost: the outcome is unknown."""
    return exitcodes.UNKNOWN_OUTCOME if exc.outcome_unknown else exitcodes.INCOMPLETE


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

    with connect(args) as client:
        if args.token:
            result = deliver(client, read_token_file(args.token), say=out.say)
        else:
            seconds = 0 if args.permanent else int(round(args.hours * 3600))
            if not args.permanent and not 60 <= seconds <= 400 * 86400:
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
             lambda r: f"{r['action']}: {r['detail']} — handset now {r['compliance']}")


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
             lambda r: f"work order {r['id']} ({r['order']}) "
                       f"{'was already applied' if r['already_applied'] else 'applied: ' + r['detail']}"
                       f" — handset now {r['compliance']}")


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
    out.emit({"before": before, "after": target, "moved_s": target - before, "deadline_clock": judged,
              "already_applied": result["already"]},
             lambda r: ("already applied: " if r["already_applied"] else "")
             + f"clock {core_to_text(r['before'])} -> {core_to_text(r['after'])} ({r['moved_s']:+d} s)"
             + ("" if r["deadline_clock"] == r["after"] else
                f"; deadlines and tokens keep the handset's latest time {core_to_text(r['deadline_clock'])}"))


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
        key = keys.delegate_to_file(root, Path(args.out), args.id, args.scopes.split(","),
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
    out.emit({"serial": serial, "root_id": root_public.hex()[:16]},
             lambda r: f"provisioned {r['serial']} (root key {r['root_id']}…)")


def cmd_service(args, out: Output) -> None:
    from host_tools.visit import Visit, VisitIncomplete

    with connect(args) as client:
        client.expect_serial(args.serial)
        visit = Visit(client, signer_loader=lambda: load_signer(args), say=out.say,
                      confirm=_confirmer(args))
        try:
            receipt = visit.service(
                reference=check_reference(args.reference),
                next_service_days=args.next_service_days,
                log_path=Path(args.log_out) if args.log_out else None,
                log_format=args.format,
            )
        except VisitIncomplete as exc:
            out.emit(exc.receipt, _receipt_text)
            raise ToolError(_incomplete_code(exc), str(exc)) from None
    out.emit(receipt, _receipt_text)
    if not receipt["passed"]:
        raise ToolError(exitcodes.VERIFY_FAILED, "service visit done, but the calibration failed")


# ---- argument parsing ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--port", default=argparse.SUPPRESS,
                        help="device path or pyserial URL (default: $LCI_PORT, else auto-detect by USB id)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one JSON object")
    common.add_argument("--baud", type=int, default=argparse.SUPPRESS, help="line rate (default 115200)")
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS,
                        help="seconds per try before a retransmission (default 0.5)")
    common.add_argument("--keys", default=argparse.SUPPRESS,
                        help=f"key folder (default: ${KEY_DIR_ENV}, else ~/.lci777)")

    parser = argparse.ArgumentParser(
        prog="lci-tool",
        description="The LCI-777 technician tool: a whole service visit over the USB cable.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"lci-tool {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_text, **kw):
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common], **kw)
        p.set_defaults(func=func)
        return p

    add("info", cmd_info, "identity: serial, firmware, protocol, capabilities")
    add("status", cmd_status, "compliance and driving state, deadlines, counts, display")

    log = sub.add_parser("log", help="download or verify the event log", parents=[common])
    log_sub = log.add_subparsers(dest="log_command", required=True, metavar="ACTION")
    p = log_sub.add_parser("download", help="download the event log (resumable), verify its chain",
                           parents=[common])
    p.set_defaults(func=cmd_log_download)
    p.add_argument("--out", required=True, help="file to write (an existing one is resumed)")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    p.add_argument("--from", dest="start", type=int, default=None, help="first record index")
    p.add_argument("--reconnects", type=int, default=5, help="reconnect attempts after a drop")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p = log_sub.add_parser("verify", help="verify a downloaded log file's hash chain", parents=[common])
    p.set_defaults(func=cmd_log_verify)
    p.add_argument("file", help="a download (.jsonl/.csv), packed records, or a folder of flash segments")
    p.add_argument("--summary", action="store_true", help="add the WAC 308-107-080 event summary")

    p = add("calibrate", cmd_calibrate, "guided calibration against a dry-gas reference")
    p.add_argument("--reference", type=float, required=True, help="dry-gas BrAC in g/210L (0.030-0.050)")
    p.add_argument("--key", help="technician key file (scope calibrate)")
    p.add_argument("--yes", action="store_true", help="do not wait for Enter between steps")

    p = add("unlock", cmd_unlock, "lift a lockout with a signed token")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--token", help="token file from the back office (hex or raw)")
    group.add_argument("--hours", type=float, default=4.0, help="minted unlock window (default 4 h)")
    group.add_argument("--permanent", action="store_true", help="minted unlock until the next recall")
    p.add_argument("--key", help="technician key file (scope unlock)")

    token = sub.add_parser("token", help="signed tokens", parents=[common])
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    p = token_sub.add_parser("apply", help="present any signed token file (back-office directive, unlock)",
                             parents=[common])
    p.set_defaults(func=cmd_token_apply)
    p.add_argument("file")

    code = sub.add_parser("code", help="keypad codes", parents=[common])
    code_sub = code.add_subparsers(dest="code_command", required=True, metavar="ACTION")
    p = code_sub.add_parser("issue", help="answer a client's keypad request code (back office)",
                            parents=[common])
    p.set_defaults(func=cmd_code_issue)
    p.add_argument("--serial", required=True)
    p.add_argument("--request", required=True, help="the request code the handset shows")
    p.add_argument("--action", default="unlock")
    p.add_argument("--lockout", type=int, default=None,
                   help="for --action clear: the directive number (seq) of the lockout the code clears")
    p.add_argument("--master", help="master secret file")
    p = code_sub.add_parser("request", help="ask the handset for a request code", parents=[common])
    p.set_defaults(func=cmd_code_request)
    p.add_argument("--action", default="unlock")

    wo = sub.add_parser("work-order", help="signed work orders", parents=[common])
    wo_sub = wo.add_subparsers(dest="wo_command", required=True, metavar="ACTION")
    p = wo_sub.add_parser("apply", help="apply a signed work order file to this handset", parents=[common])
    p.set_defaults(func=cmd_work_order_apply)
    p.add_argument("file")
    p = wo_sub.add_parser("issue", help="sign a work order (compliance department)", parents=[common])
    p.set_defaults(func=cmd_work_order_issue)
    p.add_argument("--serial", required=True)
    p.add_argument("--order", required=True,
                   choices=["installation", "removal", "exchange", "vehicle_switch", "handset_exchange"])
    p.add_argument("--id", required=True)
    p.add_argument("--vehicle", default="")
    p.add_argument("--days", type=int, default=30, help="validity (default 30 days)")
    p.add_argument("--key", help="signing key (scope work_order)")
    p.add_argument("--out", required=True)

    p = add("set-time", cmd_set_time, "set the handset's clock (signed, bound to this session)")
    p.add_argument("--time", default="now", help="ISO 8601 time, or 'now' (default)")
    p.add_argument("--key", help="technician key file (scope set_time)")

    p = add("keygen", cmd_keygen, "new provider root key and master secret (files 0600)")
    p.add_argument("--dir", help="folder (default: the key folder)")
    p.add_argument("--force", action="store_true", help="replace existing key files")

    p = add("delegate", cmd_delegate, "delegate a technician or service-center key from the root")
    p.add_argument("--id", required=True, help="key id, e.g. tech-jane or center-0042")
    p.add_argument("--scopes", required=True, help="comma list: unlock,calibrate,set_time,billing,work_order")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--root", help="root key file (default: the key folder's root.key)")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true")

    p = add("provision", cmd_provision, "write serial, root public key and keypad secret (factory mode, once)")
    p.add_argument("--serial", required=True)
    p.add_argument("--master", help="master secret file")

    p = add("service", cmd_service,
            "a whole visit: log download + verify, calibrate, clear recall, next service date, receipt")
    p.add_argument("--reference", type=float, default=0.040, help="dry-gas BrAC (default 0.040)")
    p.add_argument("--next-service-days", type=int, default=None, help="default: the handset's interval")
    p.add_argument("--serial", help="refuse to work on any other handset")
    p.add_argument("--log-out", help="where to write the log (default: SERIAL-DATE.jsonl)")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    p.add_argument("--key", help="technician key file (scope calibrate)")
    p.add_argument("--yes", action="store_true", help="do not wait for Enter between steps")
    return parser


DEFAULTS = {"port": None, "json": False, "baud": 115200, "timeout": 0.5, "keys": None}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name, value in DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    out = Output(args.json)
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
    except KeyboardInterrupt:
        return _fail(exitcodes.INCOMPLETE, "interrupted", out)
    except BrokenPipeError:  # `lci-tool ... | head`: the reader left, nothing to report
        sys.stderr.close()
        return exitcodes.OK
    except (OSError, ValueError) as exc:
        # files (an --out folder that does not exist, a log file that is not one), and
        # the typed errors of keys, tokens, work orders and log files (all ValueErrors)
        text = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.filename else str(exc)
        code = exitcodes.CREDENTIAL if type(exc).__name__ in _CREDENTIAL_ERRORS else exitcodes.USAGE
        return _fail(code, text.splitlines()[0] if text else type(exc).__name__, out)


_CREDENTIAL_ERRORS = ("KeysError", "MintError", "WorkOrderError", "CodeError")


def _fail(code: int, text: str, out: Output) -> int:
    print(f"lci-tool: {text}", file=sys.stderr)
    if out.as_json and not out.result:
        print(json.dumps({"error": text, "exit_code": code}))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
