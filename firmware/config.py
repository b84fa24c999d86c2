"""The device configuration: every policy number, per jurisdiction, in one place.

A `Config` is the defaults below, then a jurisdiction preset, then explicit overrides;
every value is an integer (times in seconds, BrAC in units of 0.0001 g/210L, volume in
mL, temperature in tenths of a degree C). Unknown keys and values out of range are
refused with ConfigError, so a typo never silently keeps a default. `as_dict()` is every
value; `wire_json()` is what CONFIG_GET sends (the values that differ from DEFAULTS: the
whole table does not fit one 510-byte payload).
"""

from firmware import keypad
from protocol.coretime import DAY, HOUR, MINUTE

# key: (default, lowest, highest), given as keywords: a key is then the interned name the
# device reads the setting by, not a string object of its own
DEFAULTS = dict(
    # breath test
    set_point=(200, 10, 1000),  # 0.020 g/210L; a reading at or above it fails
    min_volume_ml=(1500, 500, 5000),  # less air is an abort, not a fail
    breath_temp_min_dc=(280, 0, 500),  # breath temperature window (anti-circumvention)
    breath_temp_max_dc=(420, 0, 600),
    purge_s=(3, 0, 120),  # purge between tests; a blow meanwhile is an abort
    # start test failures
    temp_lockout_s=(5 * MINUTE, 0, DAY),
    temp_lockout_long_s=(15 * MINUTE, 0, DAY),
    fails_for_long=(3, 1, 20),  # this many fails ...
    fails_window_s=(15 * MINUTE, 0, DAY),  # ... within this window: the long lockout
    free_restart_s=(2 * MINUTE, 0, HOUR),  # restart without a test after a stall
    # rolling retests
    retest_first_min_s=(5 * MINUTE, MINUTE, 4 * HOUR),
    retest_first_max_s=(15 * MINUTE, MINUTE, 4 * HOUR),
    retest_next_min_s=(15 * MINUTE, MINUTE, 4 * HOUR),
    retest_next_max_s=(45 * MINUTE, MINUTE, 4 * HOUR),
    retest_window_s=(6 * MINUTE, MINUTE, HOUR),  # time to give the retest sample
    # compliance
    violation_threshold=(3, 0, 100),  # MORE than this many per service period: recall
    service_interval_s=(60 * DAY, DAY, 400 * DAY),  # 30/60/90 days by jurisdiction
    calibration_interval_s=(60 * DAY, DAY, 400 * DAY),
    service_notice_s=(7 * DAY, 0, 60 * DAY),  # "SERVICE IN n DAYS" before it is due
    recall_s=(7 * DAY, 0, 90 * DAY),  # early service recall countdown to lockout
    log_full_pct=(10, 0, 90),  # log free space at or below this: recall cause log_full
    tamper_recall=(1, 0, 1),  # 1: a tamper starts a recall; 0: logged only
    # calibration (service mode)
    cal_ref_min=(300, 1, 2000),  # dry-gas reference 0.030 ...
    cal_ref_max=(500, 1, 2000),  # ... to 0.050 g/210L
    cal_tolerance=(50, 1, 500),  # +-0.005 g/210L ...
    cal_tolerance_pct=(0, 0, 50),  # ... or, when not 0, +- this percent of the reference
    cal_checks=(2, 1, 10),  # consecutive checks within tolerance ...
    cal_check_gap_s=(5 * MINUTE, 0, HOUR),  # ... each no more than this after the last
    # keypad override code (WAC 204-50-092 defaults)
    override_s=(4 * HOUR, 0, DAY),  # lifts a lockout for up to this long
    override_activate_s=(20 * HOUR, 0, 7 * DAY),  # enter it within this of the request
    override_dead_s=(24 * HOUR, 0, 7 * DAY),  # nothing of it survives past this
    overrides_per_service=(1, 0, 10),
    # wrong keypad codes: free tries, then a wait that doubles per wrong code, capped
    # (the schedule of firmware/keypad.py; docs/security.md derives the brute-force time)
    code_free_tries=(keypad.BACKOFF_FREE_TRIES, 0, 20),
    code_backoff_s=(keypad.BACKOFF_FIRST_S, 1, DAY),
    code_backoff_max_s=(keypad.BACKOFF_MAX_S, 1, 30 * DAY),
    # the wrong-code count drops by one for every this long without a wrong code
    code_decay_s=(keypad.BACKOFF_DECAY_S, MINUTE, 30 * DAY),
    # housekeeping
    run_save_s=(5 * MINUTE, 10, DAY),  # how often the accumulated run clock is saved
    used_tokens_kept=(32, 4, 256),  # replay records kept (tokens also expire)
    # an expired token's record is dropped (raising the replay floor) this long after expiry
    replay_keep_expired_s=(7 * DAY, 0, 90 * DAY),
)

# Jurisdiction presets: only what differs from the defaults.
JURISDICTIONS = {
    "default": {},
    "california": {"set_point": 300},
    "washington": {"service_interval_s": 30 * DAY, "calibration_interval_s": 30 * DAY},
    "service_90": {"service_interval_s": 90 * DAY, "calibration_interval_s": 90 * DAY},
}


class ConfigError(ValueError):
    """An unknown key, a non-integer or an out-of-range value."""


class Config:
    def __init__(self, jurisdiction="default", **overrides):
        if jurisdiction not in JURISDICTIONS:
            raise ConfigError("unknown jurisdiction %r" % jurisdiction)
        self.jurisdiction = jurisdiction
        values = {}
        for key in DEFAULTS:
            values[key] = DEFAULTS[key][0]
        values.update(JURISDICTIONS[jurisdiction])
        for key in overrides:
            if key not in DEFAULTS:
                raise ConfigError("unknown setting %r" % key)
            values[key] = overrides[key]
        for key in values:
            value = values[key]
            default, low, high = DEFAULTS[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < low or value > high:
                raise ConfigError("%s must be an integer in %d..%d, got %r" % (key, low, high, value))
            if value != default:
                setattr(self, key, value)  # a setting at its default is read from DEFAULTS
        self._check_pairs()

    def _check_pairs(self):
        for low, high in (
            ("retest_first_min_s", "retest_first_max_s"),
            ("retest_next_min_s", "retest_next_max_s"),
            ("cal_ref_min", "cal_ref_max"),
            ("breath_temp_min_dc", "breath_temp_max_dc"),
            ("override_activate_s", "override_dead_s"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ConfigError("%s must not exceed %s" % (low, high))

    def __getattr__(self, name):  # type: (str) -> int
        """A setting at its default (__init__ sets only the ones that differ), or
        AttributeError for a name that is no setting."""
        entry = DEFAULTS.get(name)
        if entry is None:
            raise AttributeError("no setting %r" % name)
        return entry[0]

    def as_dict(self):
        out = {"jurisdiction": self.jurisdiction}
        for key in DEFAULTS:
            out[key] = getattr(self, key)
        return out

    def wire_json(self, limit=500):
        """CONFIG_GET's JSON: the jurisdiction and every value that differs from DEFAULTS
        (an absent key has its default; docs/device.md lists them). Keys that would push it
        past `limit` bytes are left out and "more": true says so."""
        out = '{"jurisdiction":"%s"' % self.jurisdiction
        more = False
        for key in DEFAULTS:
            value = getattr(self, key)
            if value != DEFAULTS[key][0]:
                item = ',"%s":%d' % (key, value)
                if len(out) + len(item) + 14 > limit:
                    more = True
                    continue
                out += item
        if more:
            out += ',"more":true'
        return (out + "}").encode()

    def cal_tolerance_for(self, reference):
        """The allowed +- difference from `reference` for a calibration check."""
        if self.cal_tolerance_pct:
            return reference * self.cal_tolerance_pct // 100
        return self.cal_tolerance
