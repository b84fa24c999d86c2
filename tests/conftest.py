"""Suite-wide pytest hooks: a closing line that shows the CPython and MicroPython runs apart."""

from __future__ import annotations


def pytest_addoption(parser):
    group = parser.getgroup("hil", "hardware-in-the-loop targets (tests/hil)")
    group.addoption(
        "--device",
        default="sim,unix",
        help="comma list of targets for tests/hil: sim (the simulator on a pty), unix (the "
        "firmware bundle on MicroPython's unix port behind a pty), mpy (the simulator with its "
        "core on MicroPython), or a device path / pyserial URL (a board)",
    )
    group.addoption(
        "--hil-keys",
        default=None,
        help="provider key folder (lci-tool keygen) a board was provisioned with; "
        "sim, unix and mpy targets get fresh keys",
    )


def pytest_terminal_summary(terminalreporter):
    labels = {
        "cpython": "CPython (unit)",
        "micropython": "MicroPython unix port (dual tests)",
        "hil-sim": "HIL over a pty: core on CPython",
        "hil-unix": "HIL over a pty: unix port (bundle)",
        "hil-mpy": "HIL over a pty: core on MicroPython",
        "hil-board": "HIL on a board",
    }
    counts: dict = {key: {} for key in labels}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if "[micropython:" in nodeid:
                kind = "micropython"
            elif nodeid.startswith("tests/hil/"):
                # a test without a target runs its own unix boards (tests/hil/test_device_forms.py)
                suffix = nodeid[nodeid.rfind("["):] if nodeid.endswith("]") else "[unix]"
                kind = {"[sim]": "hil-sim", "[unix]": "hil-unix", "[mpy]": "hil-mpy"}.get(suffix, "hil-board")
            else:
                kind = "cpython"
            counts[kind][outcome] = counts[kind].get(outcome, 0) + 1
    terminalreporter.section("runtimes")
    for kind, by_outcome in counts.items():
        if not by_outcome and kind.startswith("hil"):
            continue
        text = ", ".join(f"{n} {outcome}" for outcome, n in sorted(by_outcome.items())) or "none"
        terminalreporter.write_line(f"{labels[kind]:38} {text}")
