"""`lci-sim`: the desktop simulator's command line.

    lci-sim serve   [--tcp PORT] [--link PATH] [--baud 115200] [--drop R ...]   a device on a pty / TCP
    lci-sim run     SCENARIO.toml [--json] [--runtime micropython]             play a scenario
    lci-sim handset [--tcp PORT] [--link PATH]                                 the interactive handset
    lci-sim fleet   --devices N --days D --seed S [--json]                     many devices, statistics
    lci-sim keys    --out DIR [--seed S]                                       the simulated provider's keys

Exit codes: 0 success; 1 a scenario expectation failed (or fleet errors); 2 bad usage or
a malformed scenario (one line: FILE:LINE: problem); 3 an endpoint could not be opened.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from sim.line import Faults
from sim.provider import DEFAULT_SERIAL, Provider
from sim.runtime import RUNTIMES

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ENDPOINT = 0, 1, 2, 3

EXAMPLES = """examples:
  lci-sim serve --link /tmp/lci --tcp 7777          # then: lci-tool --port /tmp/lci status
  lci-sim serve --baud 115200 --drop 0.001 --corrupt 0.001 --fault-seed 3
  lci-sim serve --runtime micropython --installed
  lci-sim run examples/failed_start_test.toml --json
  lci-sim handset --tcp 7777
  lci-sim fleet --devices 20 --days 90 --seed 1
  lci-sim keys --out ./keys --seed 0                # the keys `serve --seed 0` trusts
"""


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a rate is between 0 and 1")
    return value


def _device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", choices=RUNTIMES, default="cpython",
                        help="run the core under CPython (default) or real MicroPython (WASI)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the device, its sensor and its provider keys")
    parser.add_argument("--serial", default=DEFAULT_SERIAL, help="serial number of the simulated unit")
    parser.add_argument("--keys", metavar="DIR",
                        help="provision with the provider keys in DIR (lci-tool keygen) instead of the seeded ones")
    parser.add_argument("--factory", action="store_true",
                        help="boot blank (unprovisioned): the host must send PROVISION")
    parser.add_argument("--installed", action="store_true",
                        help="apply an installation work order at start (needs the provider's keys)")
    parser.add_argument("--jurisdiction", default="default", help="firmware configuration preset")


def _serial_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-pty", dest="pty", action="store_false", help="do not open a pty")
    parser.add_argument("--link", metavar="PATH", help="a stable symlink to the pty")
    parser.add_argument("--tcp", metavar="PORT", type=int,
                        help="also serve socket://127.0.0.1:PORT (0: any free port)")
    parser.add_argument("--baud", type=int, default=0, help="pace bytes as a UART at this rate (0: no pacing)")
    parser.add_argument("--drop", type=_rate, default=0.0, help="rate of bytes dropped on the line")
    parser.add_argument("--duplicate", type=_rate, default=0.0, help="rate of bytes duplicated")
    parser.add_argument("--corrupt", type=_rate, default=0.0, help="rate of bytes with a bit flipped")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the line faults")
    parser.add_argument("--speed", type=float, default=1.0, help="virtual seconds per wall second")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lci-sim", description="The LCI-777 desktop simulator.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve a simulated handset on a pty and/or TCP",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _device_options(serve)
    _serial_options(serve)
    serve.add_argument("--quiet", action="store_true", help="print only the endpoints")

    run = commands.add_parser("run", help="play a scenario file")
    run.add_argument("scenario", help="SCENARIO.toml (see docs/scenarios.md)")
    run.add_argument("--json", action="store_true", help="JSON Lines: {t, source, event, compliance, session, display, detail}")
    run.add_argument("--runtime", choices=RUNTIMES, default="cpython")
    run.add_argument("--seed", type=int, default=None, help="override the scenario's seed")

    handset = commands.add_parser("handset", help="the interactive handset (Textual)")
    _device_options(handset)
    _serial_options(handset)

    fleet = commands.add_parser("fleet", help="many devices with randomized drivers")
    fleet.add_argument("--devices", type=int, default=10)
    fleet.add_argument("--days", type=int, default=30)
    fleet.add_argument("--seed", type=int, default=0)
    fleet.add_argument("--runtime", choices=RUNTIMES, default="cpython")
    fleet.add_argument("--json", action="store_true", help="print the statistics as one JSON object")

    keys = commands.add_parser("keys", help="write the seeded provider's keys for lci-tool")
    keys.add_argument("--out", required=True, metavar="DIR")
    keys.add_argument("--seed", type=int, default=0)
    keys.add_argument("--serial", default=DEFAULT_SERIAL)
    keys.add_argument("--overwrite", action="store_true")
    return parser


def _error(message: str) -> None:
    print(f"lci-sim: {message}", file=sys.stderr)


# ---- device setup shared by serve and handset ------------------------------------------------------
def make_device(args):
    """(simulator, provider or None, technician or None) as the options say."""
    from sim.simulator import Simulator
    from sim.technician import Technician

    provider = None
    if args.keys:
        provider = Provider.from_directory(args.keys, args.serial)
    elif not args.factory or args.installed:
        provider = Provider(args.seed, args.serial)
    identity = {} if args.factory else provider.identity()
    config = {"jurisdiction": args.jurisdiction}
    sim = Simulator(seed=args.seed, runtime=args.runtime, identity=identity, config=config,
                    start_s=_now_core_seconds())
    tech = None
    if provider is not None and not args.factory:
        tech = Technician(sim, provider)
        if args.installed:
            tech.install(vehicle="SIMULATED")
    return sim, provider, tech


def _now_core_seconds() -> int:
    import time

    from firmware.hal import EPOCH_UNIX

    return int(time.time()) - EPOCH_UNIX


def _faults(args, direction: int) -> Faults | None:
    if not (args.drop or args.duplicate or args.corrupt):
        return None
    return Faults(f"{args.fault_seed}:{direction}", args.drop, args.duplicate, args.corrupt)


def make_server(sim, args):
    from sim.serial_server import SerialServer

    return SerialServer(
        sim, pty=args.pty, tcp_port=args.tcp, link=args.link, baud=args.baud,
        faults=_faults(args, 0), faults_to_device=_faults(args, 1), speed=args.speed,
    )


# ---- commands --------------------------------------------------------------------------------------------
def cmd_serve(args) -> int:
    from sim.serial_server import ServerError
    from sim.timeline import Printer

    if not args.pty and args.tcp is None:
        _error("nothing to serve: give --tcp PORT or leave the pty on")
        return EXIT_USAGE
    sim, provider, tech = make_device(args)
    try:
        server = make_server(sim, args)
    except ServerError as exc:
        _error(str(exc))
        sim.close()
        return EXIT_ENDPOINT
    for line in server.endpoints():
        print(line, flush=True)
    print(f"serial: {args.serial}{' (factory, unprovisioned)' if args.factory else ''}  "
          f"runtime: {args.runtime}  seed: {args.seed}", flush=True)
    if not args.quiet:
        sim.listeners.append(Printer(out=sys.stdout))
    stop = threading.Event()

    def on_signal(*_):
        stop.set()
        server.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server.serve_forever()
    finally:
        server.close()
        if tech is not None:
            tech.close()
        sim.close()
    return EXIT_OK


def cmd_run(args) -> int:
    from sim import scenario
    from sim.timeline import Printer

    try:
        loaded = scenario.load(args.scenario)
    except scenario.ScenarioError as exc:
        _error(str(exc))
        return EXIT_USAGE
    printer = Printer(json_lines=args.json)
    result = scenario.run(loaded, args.runtime, seed=args.seed, listener=printer)
    if not args.json:
        if result.ok:
            print(f"\n{loaded.name}: all {len(loaded.steps)} steps met their expectations")
        else:
            print(f"\n{loaded.name}: {len(result.failures)} expectation(s) failed:")
            for failure in result.failures:
                print(f"  {loaded.path}:{failure['line']}: step {failure['step']}: {failure['key']}: "
                      f"expected {failure['expected']!r}, got {failure['actual']!r}")
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_handset(args) -> int:
    from sim.handset import HandsetApp
    from sim.serial_server import ServerError

    sim, provider, tech = make_device(args)
    server = None
    if args.pty or args.tcp is not None:
        try:
            server = make_server(sim, args)
        except ServerError as exc:
            _error(str(exc))
            sim.close()
            return EXIT_ENDPOINT
    app = HandsetApp(sim, server=server, realtime=True)
    try:
        app.run()
    finally:
        if server is not None:
            server.close()
        if tech is not None:
            tech.close()
        sim.close()
    return EXIT_OK


def cmd_fleet(args) -> int:
    from sim import fleet

    if args.devices < 1 or args.days < 1:
        _error("--devices and --days must be at least 1")
        return EXIT_USAGE

    def progress(done, total):
        if not args.json:
            print(f"\r  {done}/{total} devices", end="", file=sys.stderr, flush=True)

    stats = fleet.run(args.devices, args.days, seed=args.seed, runtime=args.runtime, progress=progress)
    if args.json:
        print(json.dumps(stats.as_dict()))
    else:
        print(file=sys.stderr)
        print(fleet.report(stats))
    return EXIT_OK if not (stats.core_faults or stats.sim_errors) else EXIT_FAILED


def cmd_keys(args) -> int:
    from host_tools.keys import KeysError

    provider = Provider(args.seed, args.serial)
    try:
        paths = provider.save(args.out, overwrite=args.overwrite)
    except (KeysError, OSError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    for name, path in paths.items():
        print(f"{name}: {path}")
    return EXIT_OK


COMMANDS = {"serve": cmd_serve, "run": cmd_run, "handset": cmd_handset, "fleet": cmd_fleet, "keys": cmd_keys}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


def console() -> None:
    """The console script: after a MicroPython run, leave without tearing down wasmtime
    (its worker threads print a panic at interpreter exit; the results are already out)."""
    code = main()
    if "micropython" in sys.argv:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
