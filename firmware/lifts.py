"""Which signed action may lift which recall cause: the scope x cause table, as data.

A recall cause (a bit of STATUS.causes, protocol.messages.CAUSES order) is lifted only by
the work that removes its reason, and each signed action belongs to one scope
(protocol.tokens.ACTION_SCOPES). LIFTS[scope] is the mask of causes a token of that scope
may lift; docs/security.md prints the same table. The root key signs any action, but an
action lifts only its scope's causes, whoever signed it: a work order lifts nothing.

- unlock:     no cause. A timed unlock overrides a lockout for a window (counted against
              the override allowance of the service interval) and the causes stay; an
              unlock for good ends the lockout of the causes in force, so it needs a signer
              whose scopes lift every one of them (the root does).
- calibrate:  the causes a service visit removes: service due, calibration due, violations,
              tamper, log full (at the service close), calibration failed (a passed
              calibration).
- set_time:   none.
- billing:    unpaid balance (a clear directive; the keypad clear code is the same
              decision, read over the phone).
- work_order: none. Removal and installation carry every cause over.
"""

UNPAID = 1
SERVICE_DUE = 2
CALIBRATION_DUE = 4
VIOLATIONS = 8
TAMPER = 16
LOG_FULL = 32
CALIBRATION_FAILED = 64
ALL_CAUSES = 127

LIFTS = {
    "unlock": 0,
    "calibrate": SERVICE_DUE | CALIBRATION_DUE | VIOLATIONS | TAMPER | LOG_FULL | CALIBRATION_FAILED,
    "set_time": 0,
    "billing": UNPAID,
    "work_order": 0,
}


def lifted_by_scope(scope):
    """The causes a token of an action in `scope` may lift (the scope's row; the Grant
    names its action's scope, protocol.tokens.ACTION_SCOPES)."""
    return LIFTS.get(scope, 0)


def lifted_by_signer(scopes):
    """The causes a signer may lift through any action it signs: every one for the root
    (scopes None), else the union of its scopes' rows."""
    if scopes is None:
        return ALL_CAUSES
    mask = 0
    for scope in scopes:
        mask |= LIFTS.get(scope, 0)
    return mask
