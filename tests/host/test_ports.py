"""Which port lci-tool opens: --port, $LCI_PORT, or the one LCI-777 found by USB id."""

from __future__ import annotations

import pytest
from serial.tools.list_ports_common import ListPortInfo

from host_tools.ports import PortError, resolve


def port(device: str, vid: int | None = None, pid: int | None = None, description: str = "") -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.description = vid, pid, description
    return info


PICO = port("/dev/ttyACM0", 0x2E8A, 0x0005, "Board in FS mode")
MODEM = port("/dev/ttyUSB0", 0x0403, 0x6001, "FT232R USB UART")
ESP = port("/dev/ttyUSB1", 0x10C4, 0xEA60, "CP2102 USB to UART")


def test_explicit_port_wins():
    assert resolve("socket://127.0.0.1:7777", env={"LCI_PORT": "/dev/x"}, ports=[PICO]) == "socket://127.0.0.1:7777"


def test_environment_variable_next():
    assert resolve(None, env={"LCI_PORT": "/dev/ttyS9"}, ports=[PICO]) == "/dev/ttyS9"


def test_a_single_known_board_is_found():
    assert resolve(None, env={}, ports=[MODEM, PICO]) == "/dev/ttyACM0"


def test_none_found_lists_every_port_seen():
    with pytest.raises(PortError) as info:
        resolve(None, env={}, ports=[MODEM])
    text = str(info.value)
    assert "no LCI-777 found" in text and "/dev/ttyUSB0 [0403:6001]" in text and "--port" in text


def test_several_found_asks_to_choose():
    with pytest.raises(PortError) as info:
        resolve(None, env={}, ports=[PICO, ESP])
    assert "2 LCI-777 handsets attached" in str(info.value)
    assert "/dev/ttyACM0" in str(info.value) and "/dev/ttyUSB1" in str(info.value)


def test_no_ports_at_all():
    with pytest.raises(PortError, match="no serial ports at all"):
        resolve(None, env={}, ports=[])
