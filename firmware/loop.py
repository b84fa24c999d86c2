"""The device's loop: one step reads the inputs, runs the timers, persists what changed
and drives the outputs; next_deadline says when the next step has something to do.

Functions take the Device. The order inside a step is part of the rules: deadlines first
(a recall that ran out while the board was off is a lockout before any input counts),
then the ignition, the keypad, a breath sample, the serial line, the timers again, and
last the outputs.
"""

from firmware import display_texts
from firmware import eventlog as ev
from firmware.compliance import add_cause
from firmware.driving import test_recordable
from firmware.lifts import CALIBRATION_DUE, LOG_FULL, SERVICE_DUE
from firmware.transitions_table import (
    ALARM,
    ENGINE,
    HOLD,
    IDLE,
    INSTALLED,
    RECALL,
    RELAY,
    RETEST,
    STARTS,
    WINDOW,
)
from protocol import messages


def step(d):
    """Read the HAL inputs, run the timers, set the outputs (the clock already ticked)."""
    hw = d.hw
    timers(d)
    on = bool(hw.ignition.on())
    turned_on = False
    if on != d._polled_ignition:
        d._polled_ignition = on
        turned_on = on
        d.ignition(on)
    while True:
        char = hw.keypad.read()
        if char is None:
            break
        d.key(char)
    sample = hw.sensor.take()
    # a sample that finished before the start test was asked for (by the ignition
    # turning on in this step, or before a boot) is no test: only a fresh pass closes
    # the relay
    if sample is not None and not turned_on:
        d.breath(sample)
    data = hw.serial.read()
    if data:
        d.receive(data)
    timers(d)
    settle(d)
    if d.link is not None:
        d.link.poll()


def receive(d, data):
    """Bytes from the serial line, to the protocol Handler wired to the device."""
    link = d.link
    if link is None:
        return
    link.receive(data)
    dropped = link.dropped()
    if dropped < d._frames_dropped:  # the link's decoder was replaced: count anew
        d._frames_dropped = 0
    if dropped > d._frames_dropped:
        new = dropped - d._frames_dropped
        d._frames_dropped = dropped
        if d.refusals.note("frame", 0, "malformed frames dropped", d.tb.run(), new):
            d._summarize("frame")


def timers(d):
    tb = d.tb
    run = tb.run()
    compliance = d.compliance
    flags = compliance.flags()
    if flags & RECALL and tb.left(d.recall_deadline) == 0:
        compliance.fire("expire")
    elif flags & WINDOW and d.unlock_until is not None and tb.left(d.unlock_until) == 0:
        d._log(ev.UNLOCK_END)
        compliance.fire("window_end")
    if d.provisioned and compliance.flags() & INSTALLED:
        if d.service_due and tb.left(d.service_due) == 0:
            add_cause(d, SERVICE_DUE)
        if d.calibration_due and tb.left(d.calibration_due) == 0:
            add_cause(d, CALIBRATION_DUE)
        connected = d.hw.sensor.connected()
        if connected != d._sensor_ok:
            d._sensor_ok = connected
            if connected:
                d._log(ev.TAMPER_CLEAR, value=ev.TAMPER_SENSOR_DISCONNECTED)
            else:
                d.tamper(ev.TAMPER_SENSOR_DISCONNECTED)
    session = d.session
    flags = session.flags()
    if flags & HOLD:
        if d.hold is None or tb.left(d.hold) == 0:
            d.hold = None
            session.fire("lockout_end")
    elif flags & ENGINE and d.retest_at is not None and run >= d.retest_at:
        session.fire("retest")
    elif flags & RETEST:
        if d.retest_end is None:
            d.retest_end = run + d.config.retest_window_s
        elif run >= d.retest_end:
            d._log(ev.RETEST_MISSED)
            session.fire("timeout")
    if d.ignition_on and session.flags() & IDLE and session.can("ignition_on"):
        session.fire("ignition_on")
    for source in d.refusals.due(run):
        d._summarize(source)


def settle(d):
    """After any input: the log's space, persist what changed, drive the outputs."""
    if d.provisioned and d.compliance.flags() & INSTALLED:
        free = d.log.free_pct()
        if free <= d.config.log_full_pct:
            add_cause(d, LOG_FULL, "%d%% free" % free)
    test_recordable(d)
    d._commit()
    outputs_update(d)


def outputs_update(d):
    hw = d.hw
    flags = d.session.flags()
    relay = bool(flags & RELAY)
    alarm = bool(flags & ALARM)
    red = alarm or bool(flags & HOLD) or not d.compliance.flags() & STARTS
    outputs = (relay, alarm, relay and not alarm, red)
    old = d._outputs
    if outputs != old:
        d._outputs = outputs
        if old is None or old[0] != relay:
            hw.relay.set(relay)
        if old is None or old[1] != alarm:
            hw.alarm.set(alarm)
            if old is not None:
                d._emit(messages.EV_ALARM, "on" if alarm else "off")
        hw.display.leds(outputs[2], red)
    screen = display_texts.screen(d)
    d._screen_tick = screen[2]
    lines = (screen[0], screen[1])
    if lines != d._screen:
        d._screen = lines
        hw.display.show(lines[0], lines[1])
        d._emit(messages.EV_DISPLAY, "%s|%s" % lines)


def next_deadline(d, screen=True):
    """Monotonic ms of the next thing that happens by itself (a deadline, a retest, a
    countdown on the screen changing), or None when nothing is scheduled. With
    screen=False countdowns on the screen are left out (they change no state)."""
    tb = d.tb
    run = tb.run()
    compliance = d.compliance.flags()
    session = d.session.flags()
    waits = []
    # deadlines that change a state when they pass (at 0 the next step takes them)
    pending = None
    if compliance & RECALL:
        pending = d.recall_deadline
    elif compliance & WINDOW:
        pending = d.unlock_until
    if pending is not None:
        waits.append(tb.left(pending))
    if session & HOLD and d.hold is not None:
        waits.append(tb.left(d.hold))
    at = None
    if session & ENGINE:
        at = d.retest_at
    elif session & RETEST:
        at = d.retest_end
    if at is not None:
        waits.append(at - run)
    at = d.refusals.next_due()
    if at is not None:
        waits.append(at - run if at > run else 0)
    # dates still ahead (once passed, their cause is set)
    dates = [d.codes.wait]
    if compliance & INSTALLED:
        dates.append(d.service_due)
        dates.append(d.calibration_due)
    for deadline in dates:
        if deadline is not None:
            left = tb.left(deadline)
            if left > 0:
                waits.append(left)
    if screen and d._screen_tick:
        waits.append(d._screen_tick)
    if not waits:
        return None
    wait = min(waits)
    frac = (tb.mono_ms - tb.boot_ms) % 1000
    ms = wait * 1000 - frac if wait > 0 else 0
    return tb.mono_ms + (ms if ms > 0 else 1)
