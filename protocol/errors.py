"""NACK codes: every error the device can answer with, a number and a one-line meaning.

The table is normative (SPEC.md repeats it); host tools print MEANINGS[code] to people.
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

MEANINGS = {
    UNKNOWN_TYPE: "unknown message type",
    BAD_PAYLOAD: "payload does not match the message layout",
    BAD_VERSION: "protocol version not supported by the device",
    BUSY: "device busy, retry later",
    NOT_PERMITTED: "not permitted in the device's current state",
    BAD_ARGUMENT: "argument out of range",
    NOT_SUPPORTED: "operation not supported by this device",
    INTERNAL: "internal error in the device; check its status before retrying",
    BAD_SIGNATURE: "token signature does not verify",
    WRONG_DEVICE: "token is bound to another device serial",
    EXPIRED: "token has expired by the device clock",
    NOT_YET_VALID: "token is not valid yet by the device clock",
    REPLAYED: "token was already used",
    OUT_OF_SCOPE: "signing key is not delegated for this action",
    DELEGATION_EXPIRED: "signing key's delegation has expired",
    UNKNOWN_KEY: "token is not signed by this provider's root",
    MALFORMED_TOKEN: "token cannot be parsed",
    SESSION_MISMATCH: "token is bound to another USB session",
    BAD_DELEGATION: "delegation certificate does not verify",
    ALREADY_APPLIED: "token already applied: nothing changed",
    SUPERSEDED: "directive is older than one the device already applied",
    BAD_CODE: "keypad code is wrong",
    CODE_BACKOFF: "too many wrong codes: wait before the next try",
    CODE_USED: "keypad code was already used",
    CODE_EXPIRED: "keypad code has expired",
    OVERRIDE_LIMIT: "override already used in this service interval",
    NO_CODE_REQUEST: "no request code is pending for that action",
    NOT_IN_SERVICE: "needs an open service session",
    REFERENCE_OUT_OF_RANGE: "dry-gas reference outside 0.030-0.050 g/210L",
    CAL_SEQUENCE: "calibration step out of order",
    CAL_UNSTABLE: "sensor reading unstable, repeat the step",
    LOG_RANGE: "log index outside the records held",
    WORK_ORDER_REQUIRED: "needs a signed work order for this device",
    WORK_ORDER_MISMATCH: "work order does not match this device or state",
    NOT_PROVISIONED: "device is not provisioned",
    ALREADY_PROVISIONED: "device is already provisioned",
    STORAGE_FAILURE: "storage write failed; nothing changed",
    REMOVED: "device is removed from service",
}


def meaning(code):
    return MEANINGS.get(code, "unknown error code 0x%02x" % code)
