"""Suite-wide pytest hooks: a closing line that shows the CPython and MicroPython runs apart."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter):
    counts = {"cpython": {}, "micropython": {}}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            runtime = "micropython" if "[micropython:" in nodeid else "cpython"
            counts[runtime][outcome] = counts[runtime].get(outcome, 0) + 1
    terminalreporter.section("runtimes")
    for runtime, by_outcome in counts.items():
        text = ", ".join(f"{n} {outcome}" for outcome, n in sorted(by_outcome.items())) or "none"
        terminalreporter.write_line(f"{runtime:12} {text}")
