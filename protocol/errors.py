"""NACK codes: every error the device can answer with, a number and a one-line meaning.

The table is normative (SPEC.md repeats it); host tools print meaning(code) to people
(the texts are in protocol/error_texts.py, host side only).
Codes are grouped by their high hex digit: 0x0_ wire and request, 0x1_ signed tokens, 0x2_ keypad codes,
0x3_ calibration and service, 0x4_ event log, 0x5_ work orders, 0x6_ device.
"""

UNKNOWN_TYPE = 0x01
BAD_PAYLOAD = 0x02
BAD_VERSION = 0x03
BUSY = 0x04
NOT_PERMITTED = 0x05
BAD_ARGUMENT = 0x06
NOT_SUPPORTED = 0x07
INTERNAL = 0x08

BAD_SIGNATURE = 0x10
WRONG_DEVICE = 0x11
EXPIRED = 0x12
NOT_YET_VALID = 0x13
REPLAYED = 0x14
OUT_OF_SCOPE = 0x15
DELEGATION_EXPIRED = 0x16
UNKNOWN_KEY = 0x17
MALFORMED_TOKEN = 0x18
SESSION_MISMATCH = 0x19
BAD_DELEGATION = 0x1A
ALREADY_APPLIED = 0x1B
SUPERSEDED = 0x1C

BAD_CODE = 0x20
CODE_BACKOFF = 0x21
CODE_USED = 0x22
CODE_EXPIRED = 0x23
OVERRIDE_LIMIT = 0x24
NO_CODE_REQUEST = 0x25

NOT_IN_SERVICE = 0x30
REFERENCE_OUT_OF_RANGE = 0x31
CAL_SEQUENCE = 0x32
CAL_UNSTABLE = 0x33

LOG_RANGE = 0x40

WORK_ORDER_REQUIRED = 0x50
WORK_ORDER_MISMATCH = 0x51

NOT_PROVISIONED = 0x60
ALREADY_PROVISIONED = 0x61
STORAGE_FAILURE = 0x62
REMOVED = 0x63

