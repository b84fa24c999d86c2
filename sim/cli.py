"""`lci-sim`: the desktop simulator's command line.

    lci-sim serve   [--tcp PORT] [--link PATH] [--baud 115200] [--drop R ...]   a device on a pty / TCP
                    [--state DIR]                                               its flash kept on disk
                    [--uplink HOST:PORT --coverage SPEC]                       ... calling the data link
    lci-sim run     SCENARIO.toml [--json] [--runtime micropython]             play a scenario
    lci-sim handset [--tcp PORT] [--link PATH]                                 the interactive handset
    lci-sim fleet   --devices N --days D --seed S [--json]                     many devices, statistics
                    [--uplink HOST:PORT --coverage SPEC --keys DIR]            ... on the data link
    lci-sim keys    --out DIR [--seed S]                                       the simulated provider's keys

Every argument is checked before anything starts: a bad one is one line on stderr (exit 2).

Exit codes (host_tools/exitcodes.py, one table for the three tools): 0 success; 1 a scenario
expectation failed (or fleet errors); 2 bad usage or a malformed scenario (one line:
FILE:LINE: problem); 3 an endpoint could not be opened; 12 the simulated handset could not
run (its core did not boot, the MicroPython VM failed): one line on stderr saying why; 130
Ctrl-C. Output piped into a reader that stops early (`| head`) ends the run quietly with 141
(128 + SIGPIPE), as a shell tool would. --json and -q/--quiet go before or after the command.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys

from firmware.config import JURISDICTIONS
from host_tools import cli, exitcodes
from protocol import coretime
from sim.line import Faults
from sim.provider import DEFAULT_SERIAL, Provider
from sim.runtime import RUNTIMES

EXIT_OK, EXIT_FAILED, EXIT_USAGE = exitcodes.OK, exitcodes.FAILED, exitcodes.USAGE
EXIT_ENDPOINT, EXIT_DEVICE = exitcodes.NO_DEVICE, exitcodes.DEVICE_FAILED
EXIT_BROKEN_PIPE = exitcodes.BROKEN_PIPE  # the reader of our output went away (`| head`)

MAX_BAUD = 4_000_000  # faster than any USB-serial bridge the handset could sit behind
MAX_SPEED = 1_000_000.0  # virtual seconds per wall second
MAX_DEVICES = 10_000
MAX_DAYS = 3650  # ten years: the core's u32 clock is good far beyond, a run is not
SERIAL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")

EXAMPLES = """examples:
  lci-sim serve --link "$(mktemp -u)" --tcp 7777 -q  # then: lci-tool --port socket://127.0.0.1:7777 status
  lci-sim serve --baud 115200 --drop 0.001 --corrupt 0.001 --fault-seed 3
  lci-sim serve --runtime micropython --installed
  lci-sim serve --tcp 7777 --installed --state ./handset   # kill -9 it, start it again: a power pull
  lci-sim serve --tcp 7777 --installed --pull-reply TOKEN  # the reply to the next token is lost
  lci-sim run examples/failed_start_test.toml --json
  lci-sim handset --tcp 7777
  lci-sim fleet --devices 20 --days 90 --seed 1
  lci-server link --listen 127.0.0.1:7800 --db billing.db &   # then, with the billing keys:
  lci-sim serve --keys ./keys --installed --uplink 127.0.0.1:7800 --coverage "on 08:00-18:00"
  lci-sim fleet --devices 200 --days 7 --keys ./keys --uplink 127.0.0.1:7800 --coverage "off d2-d4"
  lci-sim keys --out ./keys --seed 0                # the keys `serve --seed 0` trusts
  eval "$(register-python-argcomplete lci-sim)"     # tab completion in bash/zsh

""" + exitcodes.epilog(exitcodes.SIM)


def _int_in(low: int, high: int | None, what: str):
    """An argparse type: an integer in low..high (high None: no upper bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ({what})") from None
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"{low}..{high}"
            raise argparse.ArgumentTypeError(f"{what} must be {bound}, got {value}")
        return value

    return parse


def _float_in(low: float, high: float, what: str, *, low_open: bool = False):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number ({what})") from None
        too_low = value <= low if low_open else value < low
        if not math.isfinite(value) or too_low or value > high:
            bound = f"above {low:g} and at most {high:g}" if low_open else f"{low:g}..{high:g}"
            raise argparse.ArgumentTypeError(f"{what} must be {bound}, got {text}")
        return value

    return parse


_rate = _float_in(0.0, 1.0, "a rate")
_port = _int_in(0, 65535, "a TCP port")
_baud = _int_in(0, MAX_BAUD, "the baud rate")
_speed = _float_in(0.0, MAX_SPEED, "the speed", low_open=True)
_minutes = _int_in(1, 7 * 24 * 60, "the minutes between calls")


def _address(text: str) -> tuple[str, int]:
    from sim.uplink import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _coverage(text: str) -> str:
    from sim.uplink import Coverage, CoverageError

    try:
        Coverage(text)
    except CoverageError as exc:
        raise argparse.ArgumentTypeError(f"coverage {exc}") from None
    return text


def _uplink_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data link (docs/link.md)")
    group.add_argument("--uplink", metavar="HOST:PORT", type=_address,
                       help="the handset has a modem: it calls the link server (lci-server link) there")
    group.add_argument("--coverage", type=_coverage, default=None, metavar="SPEC",
                       help='when the modem has coverage, on the virtual clock: "always" (default), '
                            '"never", "on 08:00-18:00", "off d3-d5", clauses joined by ";" '
                            "(sim/uplink.py, docs/link.md)")
    group.add_argument("--dial-every", type=_minutes, default=60, metavar="MINUTES",
                       help="minutes between calls while in coverage (default 60)")
    group.add_argument("--uplink-ca", metavar="FILE",
                       help="speak TLS to the link server and trust this CA (PEM)")


def _request_type(text: str) -> int:
    from sim.cable import request_type

    try:
        return request_type(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _serial_number(text: str) -> str:
    """What the core accepts at provisioning: 1..32 letters, digits, - _ ."""
    if not 1 <= len(text) <= 32 or not set(text) <= SERIAL_CHARS:
        raise argparse.ArgumentTypeError(
            f"a serial number is 1..32 letters, digits, '-', '_' or '.', got {text!r}")
    return text


def _version_extra() -> str:
    from firmware.device import FIRMWARE_VERSION
    from protocol import framing

    return f" (firmware {FIRMWARE_VERSION}, protocol v{framing.VERSION})"


def _device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", choices=RUNTIMES, default="cpython",
                        help="run the core under CPython (default) or real MicroPython (the unix port)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the device, its sensor and its provider keys (default 0)")
    parser.add_argument("--serial", type=_serial_number, default=DEFAULT_SERIAL,
                        help="serial number of the simulated unit")
    parser.add_argument("--keys", metavar="DIR",
                        help="provision with the provider keys in DIR (lci-tool keygen) instead of the seeded ones")
    parser.add_argument("--factory", action="store_true",
                        help="boot blank (unprovisioned): the host must send PROVISION")
    parser.add_argument("--installed", action="store_true",
                        help="apply an installation work order at start (needs the provider's keys)")
    parser.add_argument("--jurisdiction", choices=sorted(JURISDICTIONS), default="default",
                        help="firmware configuration preset (firmware/config.py)")
    parser.add_argument("--state", metavar="DIR",
                        help="keep the handset's flash in DIR, written at every flash write: killing "
                        "the simulator is a power pull, the next start on DIR boots from what it left")
    parser.add_argument("--power-pull-after-units", metavar="N", type=_int_in(0, None, "a unit count"),
                        help="with --state: once serving, after N flash units (bytes written, renames, "
                        "removes) the simulator kills itself (SIGKILL) inside the next one: a torn write")


def _serial_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-pty", dest="pty", action="store_false", help="do not open a pty")
    parser.add_argument("--link", metavar="PATH", help="a stable symlink to the pty")
    parser.add_argument("--tcp", metavar="PORT", type=_port,
                        help="also serve socket://127.0.0.1:PORT (0: any free port)")
    parser.add_argument("--baud", type=_baud, default=0,
                        help=f"pace bytes as a UART at this rate, 0..{MAX_BAUD} (0: no pacing)")
    parser.add_argument("--drop", type=_rate, default=0.0, help="rate of bytes dropped on the line")
    parser.add_argument("--duplicate", type=_rate, default=0.0, help="rate of bytes duplicated")
    parser.add_argument("--corrupt", type=_rate, default=0.0, help="rate of bytes with a bit flipped")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the line faults")
    parser.add_argument("--pull-reply", metavar="TYPE", type=_request_type,
                        help="pull the cable after the handset read a TYPE request (e.g. TOKEN): its "
                        "reply is lost, the TCP connection dropped")
    parser.add_argument("--pull-times", metavar="N", type=_int_in(0, None, "a count"), default=1,
                        help="how many such pulls (default 1; 0: every time)")
    parser.add_argument("--speed", type=_speed, default=1.0, help="virtual seconds per wall second (> 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lci-sim", description="The LCI-777 desktop simulator.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.add_version(parser, "lci-sim", _version_extra())
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve a simulated handset on a pty and/or TCP",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _device_options(serve)
    _serial_options(serve)
    _uplink_options(serve)

    run = commands.add_parser("run", help="play a scenario file")
    run.add_argument("scenario", help="SCENARIO.toml (see docs/scenarios.md)")
    run.add_argument("--runtime", choices=RUNTIMES, default="cpython",
                     help="run the core under CPython (default) or real MicroPython (the unix port)")
    run.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    run.add_argument("--state", metavar="DIR", help="keep the handset's flash in DIR (overrides the "
                     "scenario's `state`): a later run, or `lci-sim serve --state DIR`, continues it")

    handset = commands.add_parser(
        "handset", help="the interactive handset (Textual); installed in a vehicle unless --uninstalled")
    _device_options(handset)
    _serial_options(handset)
    handset.add_argument("--uninstalled", action="store_true",
                         help="boot as a provisioned unit not yet installed (no installation work order)")

    fleet = commands.add_parser("fleet", help="many devices with randomized drivers")
    fleet.add_argument("--devices", type=_int_in(1, MAX_DEVICES, "the number of devices"), default=10,
                       help=f"units in the fleet (1..{MAX_DEVICES})")
    fleet.add_argument("--days", type=_int_in(1, MAX_DAYS, "the number of days"), default=30,
                       help=f"days each unit lives (1..{MAX_DAYS})")
    fleet.add_argument("--seed", type=int, default=0, help="seed of the fleet (default 0)")
    fleet.add_argument("--runtime", choices=RUNTIMES, default="cpython",
                       help="run the cores under CPython (default) or real MicroPython (the unix port)")
    fleet.add_argument("--keys", metavar="DIR",
                       help="with --uplink: every unit trusts the provider keys in DIR (those the "
                            "link server's billing signs with); default: the seeded provider")
    fleet.add_argument("--lossy", type=_rate, default=0.0,
                       help="with --uplink: chance per byte that a call breaks off there")
    _uplink_options(fleet)

    keys = commands.add_parser("keys", help="write the seeded provider's keys for lci-tool")
    keys.add_argument("--out", required=True, metavar="DIR", help="folder to write the key files into")
    keys.add_argument("--seed", type=int, default=0, help="the provider's seed (default 0, as serve's)")
    keys.add_argument("--serial", type=_serial_number, default=DEFAULT_SERIAL,
                      help="serial number the keys are for")
    keys.add_argument("--overwrite", action="store_true", help="replace existing key files")
    parser.commands = {"serve": serve, "run": run, "handset": handset, "fleet": fleet, "keys": keys}
    cli.add_output_options(
        parser,
        verbose_help="serve: every frame the handset reads (<) and writes (>) on its serial line; "
                     "run: every frame on the technician's cable, from the laptop's side (> sent, "
                     "< received); on stderr",
        json_help="run: JSON Lines {t, at, source, event, compliance, session, display, detail}; "
                  "serve: the endpoints; fleet, keys: one JSON object")
    return parser


def check_arguments(parser: argparse.ArgumentParser, args) -> None:
    """What one option alone cannot say: options that contradict each other (argparse's
    usage error, exit 2, before anything starts)."""
    command = parser.commands[args.command]
    if args.command in ("serve", "handset"):
        if args.drop + args.duplicate + args.corrupt > 1.0:
            command.error("--drop + --duplicate + --corrupt must not exceed 1")
        if args.factory and args.installed:
            command.error("--installed needs a provisioned unit: leave out --factory")
        if args.factory and args.keys:
            command.error("--factory boots a blank unit: --keys would not be used "
                          "(provision it over the wire with lci-tool)")
        if args.power_pull_after_units is not None and not args.state:
            command.error("--power-pull-after-units needs --state DIR (the flash it tears)")
        if args.power_pull_after_units is not None and args.command != "serve":
            command.error("--power-pull-after-units is for lci-sim serve")
    if getattr(args, "verbose", 0) and args.command not in ("serve", "run"):
        command.error("-v shows the frames on the wire: it is for serve and run")
    if args.command == "serve" and not args.pty and args.tcp is None:
        command.error("nothing to serve: give --tcp PORT or leave the pty on")
    if args.command in ("serve", "fleet") and not args.uplink:
        for option, value in (("--coverage", args.coverage), ("--uplink-ca", args.uplink_ca)):
            if value is not None:
                command.error(f"{option} needs --uplink HOST:PORT")
        if args.command == "fleet" and (args.keys or args.lossy):
            command.error("--keys and --lossy go with --uplink HOST:PORT")
    if args.command == "serve" and args.uplink and args.factory:
        command.error("--uplink needs a provisioned unit: leave out --factory")
    if args.command == "handset":
        if args.installed and args.uninstalled:
            command.error("--installed and --uninstalled contradict each other")
        # a handset on the desk is driven at once: installed, unless asked for a blank or bare unit
        args.installed = not (args.factory or args.uninstalled)


def _error(message: str) -> None:
    cli.error("lci-sim", message)


# ---- device setup shared by serve and handset ------------------------------------------------------
class DeviceFailure(Exception):
    """The simulated handset cannot run as asked (one line for people: exit 12)."""


class UsageFailure(Exception):
    """An argument that only shows itself bad when used (a key folder ...): exit 2."""


def make_device(args):
    """(simulator, provider or None, technician or None) as the options say. Raises
    UsageFailure (unusable --keys) or DeviceFailure (the core did not boot, the runtime
    failed, the installation was refused), each with a one-line message."""
    from host_tools.keys import KeysError
    from host_tools.link import LinkError
    from sim.runtime import RuntimeFailure
    from sim.simulator import SimError, Simulator
    from sim.technician import Technician

    provider = None
    if args.keys:
        try:
            provider = Provider.from_directory(args.keys, args.serial)
        except (KeysError, OSError) as exc:
            raise UsageFailure(f"--keys {args.keys}: {exc}") from None
    elif not args.factory:
        provider = Provider(args.seed, args.serial)
    identity = {} if args.factory else provider.identity()
    config = {"jurisdiction": args.jurisdiction}
    hardware = None
    start_s = _now_core_seconds()
    if args.state:
        from sim.clock import VirtualClock
        from sim.diskflash import DiskFlash
        from sim.hardware import SimHardware

        try:
            storage = DiskFlash(args.state)
        except OSError as exc:
            raise UsageFailure(f"--state {args.state}: {exc.strerror or exc}") from None
        hardware = SimHardware(VirtualClock(start_s), args.seed, storage=storage)
    try:
        sim = Simulator(seed=args.seed, runtime=args.runtime, identity=identity, config=config,
                        start_s=start_s, hardware=hardware)
    except (SimError, RuntimeFailure) as exc:
        raise DeviceFailure(str(exc)) from None
    tech = None
    restored = hardware is not None and hardware.storage.restored > 0
    if provider is not None:
        tech = Technician(sim, provider)
        if args.installed and not restored:  # a restored handset keeps what its flash says
            try:
                tech.install(vehicle="SIMULATED")
            except LinkError as exc:
                tech.close()
                sim.close()
                raise DeviceFailure(f"the installation work order was refused: {exc}") from None
    return sim, provider, tech


def _now_core_seconds() -> int:
    import time

    return coretime.from_unix(time.time())


def _faults(args, direction: int) -> Faults | None:
    if not (args.drop or args.duplicate or args.corrupt):
        return None
    return Faults(f"{args.fault_seed}:{direction}", args.drop, args.duplicate, args.corrupt)


def make_server(sim, args):
    from sim.cable import CablePull
    from sim.serial_server import SerialServer

    pull = None if args.pull_reply is None else CablePull(args.pull_reply, args.pull_times)
    return SerialServer(
        sim, pty=args.pty, tcp_port=args.tcp, link=args.link, baud=args.baud,
        faults=_faults(args, 0), faults_to_device=_faults(args, 1), pull=pull, speed=args.speed,
        trace=cli.frame_tracer() if getattr(args, "verbose", 0) else None,
    )


def _uplink_ssl(args):
    import ssl

    if not args.uplink_ca:
        return None
    try:
        return ssl.create_default_context(cafile=args.uplink_ca)
    except (OSError, ssl.SSLError) as exc:
        raise UsageFailure(f"--uplink-ca {args.uplink_ca}: {exc}") from None


def make_dialer(sim, args):
    """The modem of `lci-sim serve --uplink`: days of the coverage schedule are UTC days, day 0
    the one the simulator started on."""
    from sim.uplink import Coverage, Dialer

    if not args.uplink:
        return None
    origin_ms = -((sim.clock.start_s % coretime.DAY) * 1000)
    return Dialer(sim, args.uplink, Coverage(args.coverage or "always", origin_ms),
                  args.dial_every * 60_000, ssl=_uplink_ssl(args))


# ---- commands --------------------------------------------------------------------------------------------
def _shut(server, tech, sim) -> None:
    if server is not None:
        server.close()
    if tech is not None:
        tech.close()
    sim.close()


def cmd_serve(args) -> int:
    from sim.serial_server import ServerError
    from sim.timeline import Printer

    sim, provider, tech = make_device(args)
    server = None
    try:
        try:
            server = make_server(sim, args)
        except ServerError as exc:
            _error(str(exc))
            return EXIT_ENDPOINT
        if args.power_pull_after_units is not None:
            sim.hw.storage.arm_kill(args.power_pull_after_units)
        if args.json:  # one line a script can read the endpoints from
            print(cli.dumps({"pty": server.pty_path, "link": server.link, "tcp": server.tcp_url,
                             "serial": args.serial, "runtime": args.runtime, "seed": args.seed,
                             "state": args.state}), flush=True)
        else:
            for line in server.endpoints():
                print(line, flush=True)
            print(f"serial: {args.serial}{' (factory, unprovisioned)' if args.factory else ''}  "
                  f"runtime: {args.runtime}  seed: {args.seed}", flush=True)
            if args.state:
                files = sim.hw.storage.restored
                print(f"state: {args.state} ({f'restored {files} flash files' if files else 'new'})",
                      flush=True)
        if not (args.quiet or args.json):
            sim.listeners.append(Printer(out=sys.stdout, start_s=sim.clock.start_s))

        def on_signal(*_):
            server.stop()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        dialer = make_dialer(sim, args)
        if dialer is not None:
            print(f"uplink: {args.uplink[0]}:{args.uplink[1]}, coverage {args.coverage or 'always'}, "
                  f"a call every {args.dial_every} min in coverage", flush=True)
        server.serve_forever(tick=dialer.tick if dialer is not None else None)
    finally:
        _shut(server, tech, sim)
    return EXIT_OK


def cmd_run(args) -> int:
    from sim import scenario
    from sim.timeline import Printer

    try:
        loaded = scenario.load(args.scenario)
    except scenario.ScenarioError as exc:
        _error(str(exc))
        return EXIT_USAGE
    printer = Printer(json_lines=args.json, start_s=loaded.start_s)
    if args.verbose:  # the laptop's frames on the technician's cable
        from host_tools.link import Link

        Link.trace = cli.frame_tracer()
    try:
        result = scenario.run(loaded, args.runtime, seed=args.seed, listener=printer, state=args.state)
    except BrokenPipeError:
        raise  # the reader went away (main() ends quietly)
    except OSError as exc:
        _error(f"state folder: {exc.strerror or exc}")
        return EXIT_USAGE
    finally:
        if args.verbose:
            Link.trace = None
    if not args.json:
        if result.ok:
            print(f"\n{loaded.name}: all {len(loaded.steps)} steps met their expectations")
        else:
            print(f"\n{loaded.name}: {cli.plural(len(result.failures), 'expectation')} failed:")
            for failure in result.failures:
                print(f"  {loaded.path}:{failure['line']}: step {failure['step']}: {failure['key']}: "
                      f"expected {_value(failure['expected'])}, got {_value(failure['actual'])}")
    return EXIT_OK if result.ok else EXIT_FAILED


def _value(value) -> str:
    """An expected or actual value for people: a name in quotes, a list as 'a', 'b'."""
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value) or "none"
    return cli._plain(value)


def cmd_handset(args) -> int:
    from sim.handset import HandsetApp
    from sim.serial_server import ServerError

    sim, provider, tech = make_device(args)
    server = None
    try:
        if args.pty or args.tcp is not None:
            try:
                server = make_server(sim, args)
            except ServerError as exc:
                _error(str(exc))
                return EXIT_ENDPOINT
        HandsetApp(sim, server=server, realtime=True).run()
    finally:
        _shut(server, tech, sim)
    return EXIT_OK


def cmd_fleet(args) -> int:
    from sim import fleet

    # linked fleets count days (_fleet_linked has its own bar); a plain fleet counts devices
    bar = cli.Progress("fleet", args.devices, "devices",
                       enabled=not (args.json or args.quiet or args.uplink))

    def progress(done, total):
        bar.update(done - bar.done)

    try:
        if args.uplink:
            stats = _fleet_linked(args, progress)
        else:
            stats = fleet.run(args.devices, args.days, seed=args.seed, runtime=args.runtime,
                              progress=progress)
    finally:
        bar.close()
    if args.json:
        print(cli.dumps(stats.as_dict()))
    else:
        print(fleet.report(stats))
    return EXIT_OK if not (stats.core_faults or stats.sim_errors) else EXIT_FAILED


def _fleet_linked(args, progress=None):
    import asyncio

    from host_tools.keys import KeysError
    from sim import fleet
    from sim.uplink import Coverage

    base = None
    if args.keys:
        try:
            base = Provider.from_directory(args.keys, fleet.serial_of(0))
        except (KeysError, OSError) as exc:
            raise UsageFailure(f"--keys {args.keys}: {exc}") from None
    else:
        base = Provider(args.seed, fleet.serial_of(0), start_s=fleet.START_S)
    host, port = args.uplink
    uplink = fleet.Uplink(host, port, Coverage(args.coverage or "always"),
                          every_ms=args.dial_every * 60_000, ssl=_uplink_ssl(args),
                          lossy=args.lossy)
    bar = cli.Progress(f"fleet of {args.devices}", args.days, "days", enabled=not (args.json or args.quiet))

    def days_done(done, total):
        bar.update(done - bar.done)

    try:
        return asyncio.run(fleet.run_linked(args.devices, args.days, uplink, seed=args.seed,
                                            runtime=args.runtime, provider=fleet.shared_provider(base),
                                            progress=days_done))
    finally:
        bar.close()


def cmd_keys(args) -> int:
    from host_tools.keys import KeysError

    provider = Provider(args.seed, args.serial)
    try:
        paths = provider.save(args.out, overwrite=args.overwrite)
    except (KeysError, OSError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    if args.json:
        print(cli.dumps({name: str(path) for name, path in paths.items()}))
    else:
        for name, path in paths.items():
            print(f"{name}: {path}")
    return EXIT_OK


COMMANDS = {"serve": cmd_serve, "run": cmd_run, "handset": cmd_handset, "fleet": cmd_fleet, "keys": cmd_keys}


def main(argv: list[str] | None = None) -> int:
    from sim.runtime import RuntimeFailure
    from sim.simulator import SimError

    parser = build_parser()
    cli.completion(parser)
    args = cli.defaults(parser.parse_args(argv), cli.OUTPUT_DEFAULTS)
    check_arguments(parser, args)

    def command() -> int:
        try:
            return COMMANDS[args.command](args)
        except UsageFailure as exc:
            _error(str(exc))
            return EXIT_USAGE
        except (DeviceFailure, SimError, RuntimeFailure) as exc:
            _error(str(exc))
            return EXIT_DEVICE

    return cli.run("lci-sim", command)


_quiet_stdout = cli.quiet_stdout


def console() -> None:
    """The console script."""
    sys.exit(main())


if __name__ == "__main__":
    console()
