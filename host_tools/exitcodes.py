"""The exit codes of the three command-line tools, from one table: a number means one thing.

Scripts may rely on them. Each tool uses the rows that apply to it; `lci-X --help` and the docs
(docs/technician.md, docs/scenarios.md, docs/billing.md) print that tool's rows from here.
"""

OK = 0
FAILED = 1  # the job ran and its outcome is a failure (an expectation missed, a rule refused)
USAGE = 2  # bad arguments or input (argparse's own code)
NO_DEVICE = 3  # no port or endpoint: none found, several found, or it cannot be opened
WRONG_DEVICE = 4  # the handset's serial is not the one on the paperwork or token
TIMEOUT = 5  # the handset stopped answering (cable, power, baud rate): nothing was changed
REFUSED = 6  # the handset refused the request (NACK: the reason is printed)
CREDENTIAL = 7  # key file, token or code problem on the host side (missing, bad, expired)
VERIFY_FAILED = 8  # a check failed: log chain broken, calibration failed
PROTOCOL = 9  # protocol version mismatch or a malformed reply (never a dropped cable)
INCOMPLETE = 10  # a multi-step visit stopped midway: the output says what remains
UNKNOWN_OUTCOME = 11  # a command went out and no answer came back: it may have been applied
DEVICE_FAILED = 12  # the simulated handset could not run (its core did not boot, the VM failed)
UPLOAD_FAILED = 13  # the visit is done but the server did not file its upload (the line says why)
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
BROKEN_PIPE = 141  # the reader of the output went away (`| head`): 128 + SIGPIPE, as a shell tool

TOOL, SIM, BILLING = "lci-tool", "lci-sim", "lci-billing"
ALL = (TOOL, SIM, BILLING)

# (code, the tools it applies to, {tool or "*": meaning})
ROWS = [
    (OK, ALL, {"*": "success"}),
    (FAILED, (SIM, BILLING), {
        SIM: "a scenario expectation was not met (or the fleet saw core faults)",
        BILLING: "refused by the billing rules (the line says why), a declined payment, a "
                 "scenario event not as expected",
    }),
    (USAGE, ALL, {"*": "bad arguments or input (one line says which)",
                  SIM: "bad arguments or a malformed scenario (FILE:LINE: problem)"}),
    (NO_DEVICE, (TOOL, SIM), {TOOL: "no handset: no port, cannot open it, or none/several found",
                              SIM: "an endpoint (pty, TCP port, --link) could not be opened"}),
    (WRONG_DEVICE, (TOOL,), {"*": "wrong handset: its serial is not the one on the paperwork"}),
    (TIMEOUT, (TOOL,), {"*": "the handset stopped answering (a dropped connection; nothing changed)"}),
    (REFUSED, (TOOL,), {"*": "the handset refused the request (the reason is printed), e.g. "
                             "tokens signed by another provider's key"}),
    (CREDENTIAL, (TOOL,), {"*": "key, token or code problem on this laptop (missing or bad key "
                                "file, a key without the scope), checked before anything starts"}),
    (VERIFY_FAILED, (TOOL,), {"*": "verification failed (log chain broken, calibration failed)"}),
    (PROTOCOL, (TOOL,), {"*": "protocol version mismatch or a malformed reply"}),
    (INCOMPLETE, (TOOL,), {"*": "a visit stopped midway: the receipt lists what was done and what remains"}),
    (UNKNOWN_OUTCOME, (TOOL,), {"*": "the handset did not answer a command it may have applied: "
                                     "run `lci-tool status`, or run the same command again"}),
    (DEVICE_FAILED, (SIM,), {"*": "the simulated handset could not run (its core did not boot, "
                                  "the MicroPython VM failed)"}),
    (UPLOAD_FAILED, (TOOL,), {"*": "the visit is done, but the provider's server did not take "
                                   "its upload (the line says why): run the upload again"}),
    (INTERRUPTED, ALL, {"*": "interrupted (Ctrl-C)"}),
    (BROKEN_PIPE, ALL, {"*": "the reader of the output went away (`| head`), as SIGPIPE would"}),
]


def table(tool: str) -> list[tuple[int, str]]:
    """(code, meaning) for one tool, in order."""
    return [(code, text.get(tool, text.get("*"))) for code, tools, text in ROWS if tool in tools]


TABLE = table(TOOL)  # lci-tool's rows (kept for callers that print them)


def epilog(tool: str) -> str:
    return "exit codes:\n" + "\n".join(f"  {code:3d}  {text}" for code, text in table(tool))
