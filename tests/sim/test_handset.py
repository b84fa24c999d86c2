"""The Textual handset, headless: keys drive the simulated device, the screen shows it."""

from __future__ import annotations

import asyncio

from sim.handset import HandsetApp
from sim.provider import Provider
from sim.simulator import Simulator
from sim.technician import Technician


def _installed_sim(seed=3):
    provider = Provider(seed)
    sim = Simulator(seed=seed, identity=provider.identity())
    tech = Technician(sim, provider)
    tech.install(vehicle="TEST")
    return sim, tech


def _screen_text(app) -> str:
    lcd = app.query_one("#lcd")
    state = app.query_one("#state")
    return str(lcd.render()) + "\n" + str(state.render())


def test_a_drive_through_the_handset_keys(tmp_path):
    sim, tech = _installed_sim()

    async def scenario():
        app = HandsetApp(sim)
        async with app.run_test(size=(110, 36)) as pilot:
            await pilot.press("i")
            assert sim.state["session"] == "test_requested"
            assert "PLEASE BLOW" in _screen_text(app)
            await pilot.press("b")  # BrAC 0.000
            assert sim.state["session"] == "engine_enabled"
            assert sim.hw.relay.closed
            assert "CLOSED" in _screen_text(app)
            await pilot.press("h")  # an hour with nobody answering the retest
            assert sim.state["session"] == "violation"
            assert sim.hw.alarm.on
            assert "alarm ON" in _screen_text(app)
            path = app.save_screenshot(path=str(tmp_path), filename="handset.svg")
            await pilot.press("i")
            assert sim.state["session"] == "ignition_off"
        return path

    path = asyncio.run(scenario())
    svg = open(path, encoding="utf-8").read()
    assert svg.startswith("<svg")
    assert "VIOLATION" in svg  # the display as the driver saw it
    tech.close()
    sim.close()


def test_failed_test_countdown_power_cut_and_keypad(tmp_path):
    sim, tech = _installed_sim(4)

    async def scenario():
        app = HandsetApp(sim)
        async with app.run_test(size=(110, 36)) as pilot:
            for _ in range(8):
                await pilot.press("plus")  # 0.040 g/210L
            assert app.brac == 400
            await pilot.press("i", "b")
            assert sim.state["session"] == "temporary_lockout"
            assert "hold 4m" in _screen_text(app) or "hold 5m" in _screen_text(app)
            await pilot.press("m")
            assert "WAIT" in sim.hw.display.line2
            await pilot.press("p")
            assert not sim.powered
            assert "power       CUT" in _screen_text(app)
            await pilot.press("p")
            assert sim.powered
            assert sim.state["session"] == "temporary_lockout"  # a power cut never clears it
            await pilot.press("k")
            await pilot.press("A", "enter")
            assert any(e["event"] == "keys" and e["detail"]["keys"] == "A" for e in sim.timeline)
            await pilot.press("t")
            assert not sim.hw.sensor.connected()
            log = app.query_one("#log")
            assert any("tamper" in str(line) for line in log.lines)

    asyncio.run(scenario())
    tech.close()
    sim.close()


def test_realtime_tick_serves_the_line():
    from sim.serial_server import SerialServer

    sim, tech = _installed_sim(5)
    server = SerialServer(sim, pty=False, tcp_port=None)

    async def scenario():
        app = HandsetApp(sim, server=server, realtime=False)
        async with app.run_test(size=(110, 36)):
            before = sim.t_ms
            server.wall = lambda: server._base_wall + 90.0  # 90 s of wall time went by
            app._tick()
            assert sim.t_ms == before + 90_000
            from host_tools.cli import record_time

            shown = f"{record_time(sim.clock.start_s + sim.t_ms // 1000)} D00"  # ISO 8601, day of the story
            assert shown in _screen_text(app)

    asyncio.run(scenario())
    server.close()
    tech.close()
    sim.close()


def test_every_key_fits_the_footer_at_80_columns_and_help_closes_with_escape():
    """A laptop terminal is 80 columns: power, tamper and quit must not scroll off the footer."""
    sim, tech = _installed_sim(6)

    async def scenario():
        app = HandsetApp(sim)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            shown = {key.key_display or key.key: key.region for key in app.query("FooterKey")}
            for key in ("i", "b", "+", "-", "k", "r", "m", "h", "d", "p", "t", "q"):
                assert key in shown, f"{key} is not in the footer"
                assert shown[key].right <= 80, f"{key} is cut off at 80 columns: {shown[key]}"
            assert "? every key" in str(app.query_one("#log").border_title)
            await pilot.press("question_mark")
            await pilot.pause()
            assert len(app.screen.query("HelpPanel")) == 1
            await pilot.press("escape")
            await pilot.pause()
            assert len(app.screen.query("HelpPanel")) == 0
            await pilot.press("p")  # keys still reach the handset after Esc
            assert not sim.powered

    asyncio.run(scenario())
    tech.close()
    sim.close()


def test_the_serial_endpoints_are_shown_and_the_log_runs_while_the_keypad_is_open():
    from sim.serial_server import SerialServer

    sim, tech = _installed_sim(7)
    server = SerialServer(sim, pty=False, tcp_port=0)

    async def scenario():
        app = HandsetApp(sim, server=server, realtime=False)
        async with app.run_test(size=(80, 24)) as pilot:
            assert server.tcp_url in _screen_text(app)
            await pilot.press("k")
            log = app.query_one("#log")
            before = len(log.lines)
            sim.ignition(True)  # the world goes on while the driver types
            app._tick()
            await pilot.pause()
            assert len(log.lines) > before
            assert "test_requested" in _screen_text(app)

    asyncio.run(scenario())
    server.close()
    tech.close()
    sim.close()
