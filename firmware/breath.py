"""Breath-test evaluation: one sample in, pass / fail / abort out.

A sample is judged in this order: a blow while the sensor purges, an incomplete blow,
too little air, a breath temperature outside the window are ABORTs (not fails: the
driver blows again); otherwise the fuel-cell reading is scaled by the calibration gain
into BrAC, and a BrAC at or above the set point FAILs, anything below PASSes.
"""

PASS = "pass"
FAIL = "fail"
ABORT = "abort"

# calibration gain is fixed point: BrAC = fuel_cell * gain / GAIN_ONE
GAIN_ONE = 10000
BRAC_MAX = 0xFFFF


def scale(fuel_cell, gain):
    """BrAC (0.0001 g/210L units) of a raw fuel-cell reading under `gain`, rounded, clamped."""
    if fuel_cell <= 0:
        return 0
    brac = (fuel_cell * gain + GAIN_ONE // 2) // GAIN_ONE
    return BRAC_MAX if brac > BRAC_MAX else brac


def evaluate(sample, config, gain, purging=False):
    """(result, brac, reason) for a hal.BreathSample; reason is "" for a pass or a fail."""
    if purging:
        return ABORT, 0, "purging"
    if not sample.complete:
        return ABORT, 0, "incomplete"
    if sample.volume_ml < config.min_volume_ml:
        return ABORT, 0, "low_volume"
    temperature = sample.temperature_dc
    if temperature < config.breath_temp_min_dc or temperature > config.breath_temp_max_dc:
        return ABORT, 0, "temperature"
    brac = scale(sample.fuel_cell, gain)
    if brac >= config.set_point:
        return FAIL, brac, ""
    return PASS, brac, ""
