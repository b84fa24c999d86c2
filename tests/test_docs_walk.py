"""Every command of README.md and docs/technician.md, run as written against a simulated handset.

A ```sh block of those files is a script: `VAR=$(mktemp ...)` lines get fresh temporary paths,
`export A=... B=...` sets the environment of the commands after it, a command ending in `&`
starts in the background (its first line of output is read: where it listens), `kill %1` stops
it, every other line runs through bash as its own process. Under a command, `#> PATTERN` is a
regular expression its output (stdout and stderr) must show and `#> exit N` its exit status
(0 when not said). Blocks that need a board or the MicroPython toolchain (`make`, `micropython`,
`python ...`) are not tool walks and are left out by their first command.

The same outputs are scanned for what a person must never read: a Python repr (`['a', 'b']`,
`{'k': ...}`, `True`, `False`, `None`, a traceback) or a raw epoch (an integer of 9 or more
digits where a time is meant) — in the human output of the three tools, `--json` lines aside.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOOLS = ("lci-tool", "lci-sim", "lci-billing")
WALKED = ("README.md", "docs/technician.md")

REPR = re.compile(r"\[['\"]|\{['\"]|\bTrue\b|\bFalse\b|\bNone\b|Traceback \(most recent call last\)"
                  r"|\w+Error: |tuple\.index")
EPOCH = re.compile(r"(?<![\w.:/-])(?<!seq=)\d{9,}(?![\w.:/-])")  # a directive's seq=N is an order, not a time


def sh_blocks(path: Path) -> list[tuple[int, list[str]]]:
    """(first line number, lines) of every ```sh block that walks the tools."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if current is None and line.strip() == "```sh":
            current, start = [], number + 1
        elif current is not None and line.strip() == "```":
            commands = [x for x in current if x.strip() and not x.lstrip().startswith("#")]
            # a walk starts with a tool or with the paths it uses; `make ...`, `python ...`
            # blocks need a board or the MicroPython toolchain
            if commands and (_tool_of(commands[0]) or re.match(r"[A-Za-z_]\w*=", commands[0])):
                blocks.append((start, current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def _tool_of(line: str) -> str | None:
    words = line.split()
    first = words[0] if words else ""
    name = first.rsplit("/", 1)[-1]
    return name if name in TOOLS else None


def parse(lines: list[str]) -> list[dict]:
    """Steps: {line, command, patterns, exit}."""
    steps: list[dict] = []
    for offset, line in enumerate(lines):
        text = line.strip()
        if text.startswith("#>"):
            expect = text[2:].strip()
            exit_code = re.fullmatch(r"exit (\d+)", expect)
            if exit_code:
                steps[-1]["exit"] = int(exit_code.group(1))
            else:
                steps[-1]["patterns"].append(expect)
        elif text and not text.startswith("#"):
            steps.append({"line": offset, "command": text.split("  #")[0].strip(), "patterns": [], "exit": 0})
    return steps


class Walk:
    """One block's shell state: variables, background processes, what was printed."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                        HOME=str(tmp / "home"), LCI_PORT="", LCI_KEYS="", PYTHONUNBUFFERED="1",
                        COLUMNS="100")
        self.env.pop("LCI_PORT")
        self.env.pop("LCI_KEYS")
        self.background: list[subprocess.Popen] = []
        self.outputs: list[tuple[str, str]] = []  # (command, human output)

    def assign(self, command: str) -> bool:
        """`a=$(mktemp -d) b=$(mktemp -u)`, `export A="$a"`: done here, in the test's tmp."""
        body = command[len("export "):] if command.startswith("export ") else command
        pairs = re.findall(r'([A-Za-z_]\w*)=("[^"]*"|\$\([^)]*\)|[^\s"]+)', body)
        if not pairs or re.sub(r'([A-Za-z_]\w*)=("[^"]*"|\$\([^)]*\)|[^\s"]+)', "", body).strip():
            return False
        for name, value in pairs:
            value = value.strip('"')
            if value == "$(mktemp -d)":
                value = tempfile.mkdtemp(dir=self.tmp)
            elif value == "$(mktemp -u)":
                value = str(self.tmp / f"{name}-{len(self.env)}")
            else:
                value = re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: self.env[m.group(1) or m.group(2)], value)
            self.env[name] = value
        return True

    def run(self, step: dict) -> None:
        command = step["command"]
        if self.assign(command):
            return
        if command == "kill %1":
            self.stop()
            return
        if command.endswith("&"):
            process = subprocess.Popen(["bash", "-c", "exec " + command[:-1].strip()], cwd=REPO, env=self.env,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.background.append(process)
            first = process.stdout.readline()  # serve prints where it listens, then serves
            self.check(step, first, None)
            return
        done = subprocess.run(["bash", "-c", command], cwd=REPO, env=self.env, capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)
        self.check(step, done.stdout + done.stderr, done.returncode)
        if "--json" not in command.split():
            self.outputs.append((command, done.stdout + done.stderr))

    def check(self, step: dict, output: str, code: int | None) -> None:
        where = f"{step['command']!r}\n--- output ---\n{output}"
        if code is not None:
            assert code == step["exit"], f"exit {code}, documented {step['exit']}: {where}"
        for pattern in step["patterns"]:
            assert re.search(pattern, output, re.M), f"documented {pattern!r} not shown by {where}"

    def stop(self) -> None:
        for process in self.background:
            process.terminate()
            process.wait(timeout=30)
            process.stdout.close()
        self.background.clear()


CASES = [(doc, start, lines) for doc in WALKED for start, lines in sh_blocks(REPO / doc)]


def test_the_docs_have_walks():
    assert {doc for doc, _, _ in CASES} == set(WALKED)


@pytest.mark.parametrize(("doc", "start", "lines"), CASES, ids=[f"{d}:{s}" for d, s, _ in CASES])
def test_doc_block_runs_as_documented(doc, start, lines, tmp_path):
    walk = Walk(tmp_path)
    try:
        for step in parse(lines):
            walk.run(step)
    finally:
        walk.stop()
    for command, output in walk.outputs:
        for line in output.splitlines():
            assert not REPR.search(line), f"a Python repr in the output of {command!r}: {line!r}"
            assert not EPOCH.search(line), f"a raw epoch in the output of {command!r}: {line!r}"
