"""Which serial port is the LCI-777: --port, then $LCI_PORT, then USB auto-detection.

Auto-detection lists the machine's serial ports with pyserial's
serial.tools.list_ports and keeps those whose USB vendor/product id is a board we ship
(KNOWN_USB_IDS). Exactly one match is used; none or several is an error that names every
port seen, so a technician can pick one with --port.
"""

from __future__ import annotations

import os

from serial.tools import list_ports

# (vid, pid): what it is. The handset enumerates as the board's own USB-CDC device.
KNOWN_USB_IDS = {
    (0x2E8A, 0x0005): "Raspberry Pi Pico (MicroPython)",
    (0x2E8A, 0x000A): "Raspberry Pi Pico (RP2040 CDC)",
    (0x2E8A, 0x0009): "Raspberry Pi Pico 2 (MicroPython)",
    (0x303A, 0x1001): "ESP32-S3/C3 (native USB)",
    (0x10C4, 0xEA60): "ESP32 dev board (CP210x bridge)",
    (0x1A86, 0x7523): "ESP32 dev board (CH340 bridge)",
}


class PortError(Exception):
    """No usable port; str() is one line naming what was seen."""


def describe(port) -> str:
    ids = f" [{port.vid:04x}:{port.pid:04x}]" if port.vid is not None else ""
    return f"{port.device}{ids} {port.description or ''}".strip()


def candidates(ports=None) -> list:
    ports = list_ports.comports() if ports is None else ports
    return [p for p in ports if (p.vid, p.pid) in KNOWN_USB_IDS]


def resolve(port: str | None, env: dict | None = None, ports=None) -> str:
    """The URL or device path to open, or PortError."""
    if port:
        return port
    env = os.environ if env is None else env
    if env.get("LCI_PORT"):
        return env["LCI_PORT"]
    seen = list(list_ports.comports() if ports is None else ports)
    found = candidates(seen)
    if len(found) == 1:
        return found[0].device
    listing = "; ".join(describe(p) for p in seen) or "no serial ports at all"
    if not found:
        raise PortError(
            f"no LCI-777 found (ports seen: {listing}); connect the handset or pass --port"
        )
    raise PortError(
        f"{len(found)} LCI-777 handsets attached ({'; '.join(describe(p) for p in found)}); "
        "choose one with --port"
    )
