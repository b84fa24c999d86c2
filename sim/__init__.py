"""The LCI-777 desktop simulator (`lci-sim`): the unchanged core on simulated hardware.

clock.py (virtual time) · hardware.py (the HAL parts) · simulator.py (one device in its
world) · runtime.py / runtime_mpy.py + device_driver.py, guest_main.py, guest_hal.py
(CPython or real MicroPython) · core_adapter.py (firmware/device.py behind the driver) ·
line.py, transport.py, serial_server.py (the cable: in-process, pty, TCP) · provider.py,
technician.py, driving.py (the people) · scenario.py, timeline.py, fleet.py, handset.py,
cli.py (the ways to run it). docs/scenarios.md is the user's guide.
"""
