"""lci-tool's exit codes: one number per kind of failure a technician can act on.

The table is documented in `lci-tool --help` and docs/technician.md; scripts may rely on it.
"""

OK = 0
USAGE = 2  # bad arguments (argparse's own code)
NO_DEVICE = 3  # no port, port cannot be opened, or none/several handsets found
WRONG_DEVICE = 4  # the handset's serial is not the one on the paperwork or token
TIMEOUT = 5  # the handset stopped answering (cable, power, baud rate)
REFUSED = 6  # the handset refused the request (NACK: the reason is printed)
CREDENTIAL = 7  # key file, token or code problem on the host side (missing, bad, expired)
VERIFY_FAILED = 8  # a check failed: log chain broken, calibration failed
PROTOCOL = 9  # protocol version mismatch or a malformed reply (never a dropped cable)
INCOMPLETE = 10  # a multi-step visit stopped midway: the output says what remains
UNKNOWN_OUTCOME = 11  # a command went out and no answer came back: it may have been applied

TABLE = [
    (OK, "success"),
    (USAGE, "bad arguments"),
    (NO_DEVICE, "no handset: no port, cannot open it, or none/several found"),
    (WRONG_DEVICE, "wrong handset: serial mismatch"),
    (TIMEOUT, "handset stopped answering"),
    (REFUSED, "handset refused the request (reason printed)"),
    (CREDENTIAL, "key, token or code problem on this laptop"),
    (VERIFY_FAILED, "verification failed (log chain, calibration)"),
    (PROTOCOL, "protocol version mismatch or malformed reply"),
    (INCOMPLETE, "visit stopped midway; the output lists what remains"),
    (UNKNOWN_OUTCOME, "the handset did not answer a command it may have applied: run status"),
]
