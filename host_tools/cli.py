"""What the three command-line tools (lci-tool, lci-sim, lci-billing) share, so they behave alike.

- `--version` (`TOOL PACKAGE-VERSION`), the exit-code epilog from host_tools/exitcodes.py;
- options every command accepts before or after the subcommand (`--json`, `-v`, `-q`; `-v`
  shows the frames on the wire in lci-tool and lci-sim (`frame_tracer`), and what a command
  wrote in lci-billing):
  `everywhere()` puts them on the parser and all its subparsers with SUPPRESS defaults, so a
  flag given anywhere survives and `defaults()` fills in the rest;
- one JSON style: one compact object per line (`dumps`), times as ISO 8601 strings;
- times for people: ISO 8601 with the zone (`iso`, `core_iso`, `record_time`), never a raw epoch;
- one-line errors (`error`), and `run()`: a closed output pipe ends the tool with 141 and no
  traceback, Ctrl-C with 130;
- progress (`Progress`) and tables (`table`): rich's where stderr/stdout is a terminal, plain
  lines elsewhere (no carriage-return bars in CI logs);
- shell completion through argcomplete (`completion`), loaded only when the shell asks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from host_tools import exitcodes
from protocol import coretime


def package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("lci777")
    except metadata.PackageNotFoundError:  # a checkout never pip-installed
        return "0+unknown"


class _Version(argparse._VersionAction):
    """--version, the package metadata read only when asked (reading it costs every run ~0.1 s)."""

    def __call__(self, parser, namespace, values, option_string=None):
        tool, extra = self.version
        self.version = f"{tool} {package_version()}{extra}"
        super().__call__(parser, namespace, values, option_string)


def add_version(parser: argparse.ArgumentParser, tool: str, extra: str = "") -> None:
    parser.add_argument("--version", action=_Version, version=(tool, extra), help="print the version and exit")


# ---- options accepted anywhere ----------------------------------------------------------------
def everywhere(parser: argparse.ArgumentParser, *names: str, **kw) -> None:
    """Add one option to `parser` and every subparser under it, default SUPPRESS: given before
    or after the subcommand, it is kept (a subparser's own default never overwrites it)."""
    kw["default"] = argparse.SUPPRESS
    parser.add_argument(*names, **kw)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
                everywhere(child, *names, **kw)


def add_output_options(parser: argparse.ArgumentParser, *, json_help: str = "print one JSON object",
                       verbose_help: str = "say more", with_json: bool = True,
                       with_verbose: bool = True) -> None:
    """--json, -v/--verbose, -q/--quiet on every command (call after all subparsers exist)."""
    if with_json:
        everywhere(parser, "--json", action="store_true", help=json_help)
    if with_verbose:
        everywhere(parser, "-v", "--verbose", action="count", help=verbose_help)
    everywhere(parser, "-q", "--quiet", action="store_true", help="print only the result (no progress)")


def defaults(args: argparse.Namespace, values: dict) -> argparse.Namespace:
    for name, value in values.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    return args


OUTPUT_DEFAULTS = {"json": False, "verbose": 0, "quiet": False}


# ---- JSON -------------------------------------------------------------------------------------------
def _jsonable(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value) -> str:
    """The one JSON style of the three tools: one compact line (jq, `tail -1`, JSON Lines)."""
    return json.dumps(value, default=_jsonable)


# ---- time ---------------------------------------------------------------------------------------------
def iso(unix_seconds: int | float | None) -> str | None:
    """Unix seconds -> '2026-01-05T08:00:00Z' (ISO 8601, UTC, with the zone); None stays None."""
    if unix_seconds is None:
        return None
    return datetime.fromtimestamp(int(unix_seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def core_iso(core_seconds: int | None) -> str | None:
    """A handset time (seconds since the core's epoch) in ISO 8601; 0/None ('never') is None."""
    if not core_seconds:
        return None
    return iso(coretime.to_unix(core_seconds))


def record_time(core_seconds: int) -> str:
    """A record's time (core seconds, 0 included: the core's epoch itself) in ISO 8601."""
    return iso(coretime.to_unix(core_seconds))


def core_text(core_seconds: int | None) -> str:
    """core_iso for a line people read: '-' for none."""
    return core_iso(core_seconds) or "-"


def duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(int(seconds), coretime.DAY)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {rest % 60} s"


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else (words or word + 's')}"


def words(items: Iterable) -> str:
    """A list for people: 'a, b, c' ('-' when empty), never a Python repr."""
    items = [str(x) for x in items]
    return ", ".join(items) if items else "-"


def pairs(mapping: dict) -> str:
    """A mapping for people: 'key value; key value'."""
    return "; ".join(f"{k} {_plain(v)}" for k, v in mapping.items()) or "-"


def _plain(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, dict):
        return pairs(value)
    if isinstance(value, (list, tuple)):
        return words(value)
    return str(value)


# ---- errors and ending -------------------------------------------------------------------------------
def error(tool: str, text: str) -> None:
    """One line on stderr: `TOOL: first line of text`."""
    line = (text or "failed").strip().splitlines()[0] if text and text.strip() else "failed"
    print(f"{tool}: {line}", file=sys.stderr, flush=True)


def quiet_stdout() -> None:
    """The reader of stdout went away: point stdout at /dev/null so that the interpreter's final
    flush does not print a second BrokenPipeError (the Python docs' recipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a file descriptor (a test's capture): nothing will flush it


def run(tool: str, main: Callable[[], int]) -> int:
    """Call a tool's main: a closed output pipe is 141 and silent, Ctrl-C 130 with one line."""
    try:
        code = main()
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        quiet_stdout()
        return exitcodes.BROKEN_PIPE
    except KeyboardInterrupt:
        error(tool, "interrupted")
        return exitcodes.INTERRUPTED


# ---- terminals: progress and tables -------------------------------------------------------------------
def is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Progress of a counted job on stderr: a rich bar on a terminal; elsewhere a plain line at
    the start and at every quarter (CI logs get lines, never carriage returns). Off: silent."""

    def __init__(self, label: str, total: int, unit: str, *, enabled: bool = True, stream=None):
        self.label, self.total, self.unit = label, max(int(total), 0), unit
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.started = time.monotonic()
        self._next_quarter = 1
        self._rich = None
        if enabled and is_terminal(self.stream):
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn(unit), TimeRemainingColumn(),
                                      console=Console(file=self.stream), transient=True)
            self._rich.start()
            self._task = self._rich.add_task(label, total=self.total or None)
        elif enabled:
            self._line(f"{label}: {self.total} {unit} to go")

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done)
            return
        if not self.total:
            return
        quarter = min(4, self.done * 4 // self.total)  # the last quarter passed, one line for it
        if quarter >= self._next_quarter:
            if quarter < 4:
                self._line(f"{self.label}: {self.done}/{self.total} {self.unit} ({quarter * 25} %)")
            self._next_quarter = quarter + 1

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
        if self.enabled:
            rate = self.done / max(time.monotonic() - self.started, 1e-6)
            self._line(f"{self.label}: {self.done} {self.unit} in "
                       f"{time.monotonic() - self.started:.1f} s ({rate:.0f} {self.unit}/s)")
            self.enabled = False


def table(headers: list[str], rows: list[list], *, stream=None) -> str | None:
    """Rows for people: a rich table on a terminal (printed, returns None), else plain
    left-aligned columns (returned as text, so it can go through the tool's output)."""
    stream = stream if stream is not None else sys.stdout
    cells = [[_plain(c) for c in row] for row in rows]
    if is_terminal(stream):
        from rich.console import Console
        from rich.table import Table

        t = Table(*headers, box=None, header_style="bold", pad_edge=False)
        for row in cells:
            t.add_row(*row)
        Console(file=stream).print(t)
        return None
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *cells, strict=False)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False)).rstrip()
             for row in [headers, *cells]]
    return "\n".join(lines)


# ---- verbose: frames on the wire ---------------------------------------------------------------------
def frame_tracer(stream=None) -> Callable:
    """A Link trace hook printing each frame as `> TYPE seq=N flags=F len=L hex` on stderr."""
    from protocol import messages

    out = stream if stream is not None else sys.stderr

    def trace(direction: str, frame) -> None:
        payload = frame.payload.hex()
        if len(payload) > 64:
            payload = payload[:64] + f"… ({len(frame.payload)} B)"
        name = messages.name_of(frame.type)
        print(f"{direction} {name} seq={frame.seq} flags={frame.flags:#04x} len={len(frame.payload)} "
              f"{payload}".rstrip(), file=out, flush=True)

    return trace


# ---- shell completion -------------------------------------------------------------------------------
def completion(parser: argparse.ArgumentParser) -> None:
    """Tab completion: `eval "$(register-python-argcomplete lci-tool)"` (bash/zsh). The shell
    asks with _ARGCOMPLETE set; any other run does not load argcomplete at all."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)
