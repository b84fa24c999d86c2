"""ESP32 (DevKitC) bench board: the pin table, and the Hardware built from it.

Every pin of the board is in PINS and nowhere else. The protocol runs on UART2
(GPIO17 TX, GPIO16 RX) through a USB-serial adapter, leaving UART0 to the REPL.
"""

import machine

from firmware import hal
from firmware.boards import mpboard

PINS = {
    "relay": 26,
    "horn": 25,
    "led_green": 32,
    "led_red": 33,
    "ignition": 27,  # switch to GND = ignition on
    "blow_button": 14,
    "purge": 12,
    "sensor_adc": 34,  # ADC1_CH6 (input only)
    "supply_adc": 35,  # ADC1_CH7, 12 V through a 47k/10k divider
    "supply_ratio_x1000": 5700,
    "keypad_rows": (19, 18, 5, 4),
    "keypad_cols": (15, 13, 2, 23),  # inputs with internal pull-downs
    "lcd_i2c": 0,
    "lcd_sda": 21,
    "lcd_scl": 22,
    "lcd_address": 0x27,
    "uart": 2,
    "uart_tx": 17,
    "uart_rx": 16,
}


class UartSerial(hal.SerialPort):
    def __init__(self, uart, tx, rx, baudrate=115200):
        self.uart = machine.UART(uart, baudrate=baudrate, tx=tx, rx=rx, rxbuf=1024)

    def read(self):
        if not self.uart.any():
            return b""
        return self.uart.read() or b""

    def write(self, data):
        self.uart.write(data)


def build():
    serial = UartSerial(PINS["uart"], PINS["uart_tx"], PINS["uart_rx"])
    return mpboard.build(PINS, "esp32", serial)


pause = mpboard.pause
