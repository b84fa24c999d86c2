"""LCI-777 wire protocol, shared by the device core and the host tools (MicroPython-compatible).

Modules: cobs (byte stuffing), framing (header, CRC, streaming decoder), messages (the
catalogue and payload codecs), errors (NACK codes), dedupe (the device's reply cache).
The normative description is SPEC.md beside this file.
"""
