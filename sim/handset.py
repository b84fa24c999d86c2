"""The interactive handset in a terminal (Textual): see and drive one simulated LCI-777.

It shows what a driver sees — the 2 x 16 display with its green and red LEDs — and what
a developer wants next to it: relay and alarm, compliance and session states, the
countdowns (temporary lockout, recall, unlock window, next service), the simulated time,
and the tail of the event log. Keys:

    i  ignition on/off          b  blow at the chosen BrAC     + / -  BrAC +-0.005 g/210L
    k  keypad entry (type keys, Enter sends; Esc closes). `A` asks the handset for an unlock
       request code (read it to the provider); key the answer in as `12345678#`
    r  refuse a test (CANCEL)   m / h / d  advance time a minute / an hour / a day
    p  power cut / power back   t  tamper: unplug / replug the breath sensor
    ?  every key with its meaning (Esc closes)     q  quit

The footer fits 80 columns with every key in it (short labels, compact); `?` opens the full
list. When the handset also serves its serial line, the pty path and the TCP URL are shown.

With `realtime` the world follows the wall clock (and a SerialServer, if given, serves
the same device on its pty / TCP endpoints); without it (the tests) time moves only by
the keys, so a headless run is exact and instant.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, RichLog, Static

from host_tools.cli import record_time
from protocol import coretime
from sim.simulator import DAY, HOUR, MINUTE, Simulator
from sim.timeline import entry_stamp, stamp, summary

BRAC_STEP = 50  # 0.005 g/210L
REALTIME_TICK_S = 0.05


def _left(seconds) -> str:
    if not seconds:
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, coretime.DAY)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


class Lcd(Static):
    """The 2 x 16 character display and the two LEDs."""

    def show(self, line1: str, line2: str, green: bool, red: bool, powered: bool) -> None:
        text = Text()
        text.append("GREEN ● " if green else "GREEN ○ ", style="bold green" if green else "dim")
        text.append("RED ● " if red else "RED ○ ", style="bold red" if red else "dim")
        text.append("\n┌────────────────┐\n")
        style = "bold black on rgb(150,200,90)" if powered else "on rgb(40,40,40)"
        text.append("│")
        text.append(f"{line1:<16.16}", style=style)
        text.append("│\n│")
        text.append(f"{line2:<16.16}", style=style)
        text.append("│\n└────────────────┘")
        self.update(text)


class HandsetApp(App):
    AUTO_FOCUS = None  # keys go to the handset until the keypad entry is opened
    CSS = """
    Screen { layout: vertical; }
    #top { height: 9; }
    #lcd { width: 22; padding: 0 1; }
    #state { width: 1fr; padding: 0 1; }
    #keypad { display: none; }
    #keypad.open { display: block; }
    #log { height: 1fr; border: round $accent; }
    """
    # short labels: with the compact footer every key fits in 80 columns; `?` (named in the
    # log pane's title) lists them in full
    BINDINGS = [
        Binding("i", "ignition", "ign", tooltip="ignition on / off"),
        Binding("b", "blow", "blow", tooltip="blow at the chosen BrAC"),
        Binding("plus,equals_sign", "brac(1)", "BrAC", key_display="+",
                tooltip="raise the next blow's BrAC by 0.005 g/210L"),
        Binding("minus", "brac(-1)", "BrAC", key_display="-",
                tooltip="lower the next blow's BrAC by 0.005 g/210L"),
        Binding("k", "keypad", "pad", tooltip="keypad entry: A asks for an unlock code; code then #"),
        Binding("r", "refuse", "refuse", tooltip="refuse the test (CANCEL)"),
        Binding("m", "advance(60)", "+1m", tooltip="advance time one minute"),
        Binding("h", "advance(3600)", "+1h", tooltip="advance time one hour"),
        Binding("d", "advance(86400)", "+1d", tooltip="advance time one day"),
        Binding("p", "power", "pwr", tooltip="power cut / power back"),
        Binding("t", "tamper", "tamp", tooltip="unplug / replug the breath sensor"),
        Binding("question_mark", "help", "help", key_display="?", show=False,
                tooltip="every key, in full"),
        Binding("q", "quit", "quit", tooltip="quit"),
    ]

    def __init__(self, sim: Simulator, *, server=None, realtime: bool = False, log_lines: int = 200):
        super().__init__()
        self.sim = sim
        self.server = server
        self.realtime = realtime
        self.brac = 0
        self.sensor_unplugged = False
        self.log_lines = log_lines
        self._pending: list[dict] = []
        self._wall = time.monotonic()
        sim.listeners.append(self._pending.append)

    # -- layout -------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Vertical():
            with Horizontal(id="top"):
                yield Lcd(id="lcd")
                yield Static(id="state")
            yield Input(placeholder="keypad: A = ask for an unlock code; 12345678# = key a code in; "
                        "Enter sends, Esc closes", id="keypad")
            yield RichLog(id="log", max_lines=self.log_lines, wrap=False, markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.title = f"LCI-777 handset (simulated, {self.sim.runtime_name})"
        self.query_one("#log", RichLog).border_title = "event log  ·  ? every key  ·  q quit"
        for entry in self.sim.timeline[-20:]:
            self._log(entry)
        self.refresh_view()
        if self.realtime:
            self.set_interval(REALTIME_TICK_S, self._tick)

    # -- the world in real time ---------------------------------------------------------------------------
    def _tick(self) -> None:
        if self.server is not None:
            self.server.poll(0)
        else:
            now = time.monotonic()
            self.sim.run_until(self.sim.t_ms + int((now - self._wall) * 1000))
            self._wall = now
        self.refresh_view()

    # -- view ----------------------------------------------------------------------------------------------
    def _log(self, entry: dict) -> None:
        if entry["source"] == "scenario":
            return
        log = self.query_one("#log", RichLog)
        line = Text(f"{entry_stamp(entry, self.sim.clock.start_s)} ", style="dim")
        style = {"device": "cyan", "driver": "green", "sim": "yellow", "tech": "magenta",
                 "billing": "magenta"}.get(entry["source"], "")
        line.append(f"{entry['source']:<7} {entry['event']:<20}", style=style)
        line.append(summary(entry.get("detail"))[:80])
        log.write(line)

    def refresh_view(self) -> None:
        for entry in self._pending:
            self._log(entry)
        self._pending.clear()
        sim = self.sim
        status = sim.status()
        hw = sim.hw
        self.query_one("#lcd", Lcd).show(hw.display.line1, hw.display.line2, hw.display.green,
                                         hw.display.red, sim.powered)
        lines = [
            f"time        {stamp(sim.clock.world_s(), sim.clock.start_s)}   device clock {record_time(sim.clock.now())}",
            f"power       {'on' if sim.powered else 'CUT'}   ignition {'ON' if hw.ignition.is_on else 'off'}"
            f"   sensor {'UNPLUGGED' if self.sensor_unplugged else 'ok'}",
            f"relay       {'CLOSED (engine enabled)' if hw.relay.closed else 'open'}   "
            f"alarm {'ON' if hw.alarm.on else 'off'}",
            f"compliance  {status['compliance'] or '-'}   causes {', '.join(status.get('causes', [])) or '-'}",
            f"session     {status['session'] or '-'}   violations {status.get('violations', '-')}",
            f"countdowns  hold {_left(status.get('hold_left'))}   recall {_left(status.get('deadline_left'))}"
            f"   unlock {_left(status.get('override_left'))}",
            f"service due {_left(max(0, status.get('service_due', 0) - sim.clock.now())) if status.get('service_due') else '-'}"
            f"   next blow BrAC {self.brac / 10000:.3f} g/210L",
        ]
        if self.server is not None and self.server.endpoints():
            lines.append("serial line " + "   ".join(self.server.endpoints()))
        self.query_one("#state", Static).update("\n".join(lines))

    # -- actions ---------------------------------------------------------------------------------------------
    def _after(self) -> None:
        self.refresh_view()

    def action_ignition(self) -> None:
        self.sim.ignition(not self.sim.hw.ignition.is_on)
        self._after()

    def action_blow(self) -> None:
        self.sim.blow(self.brac)
        self._after()

    def action_brac(self, direction: int) -> None:
        self.brac = max(0, min(5000, self.brac + direction * BRAC_STEP))
        self._after()

    def action_refuse(self) -> None:
        if self.sim.powered:
            self.sim.refuse()
        self._after()

    def action_advance(self, seconds: int) -> None:
        self.sim.advance(seconds * 1000)
        self._after()

    def action_power(self) -> None:
        if self.sim.powered:
            self.sim.power_cut()
        else:
            self.sim.power_on()
        self._after()

    def action_tamper(self) -> None:
        self.sensor_unplugged = not self.sensor_unplugged
        self.sim.tamper("sensor" if self.sensor_unplugged else "clear")
        self._after()

    def action_keypad(self) -> None:
        keypad = self.query_one("#keypad", Input)
        keypad.add_class("open")
        keypad.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        keys = event.value.strip().upper()
        event.input.value = ""
        try:
            if keys:
                self.sim.press(keys)
        except ValueError as exc:
            self.notify(str(exc), severity="error")
        event.input.remove_class("open")
        self.set_focus(None)
        self._after()

    def action_help(self) -> None:
        self.action_show_help_panel()

    def on_key(self, event) -> None:
        if event.key == "escape":
            keypad = self.query_one("#keypad", Input)
            keypad.remove_class("open")
            self.action_hide_help_panel()
            self.set_focus(None)


ADVANCE = {"minute": MINUTE, "hour": HOUR, "day": DAY}
