"""Raspberry Pi Pico (RP2040) bench board: the pin table, and the Hardware built from it.

Every pin of the board is in PINS and nowhere else (docs/board.md draws the wiring). The
protocol runs over the Pico's USB CDC (stdin/stdout of the REPL, Ctrl-C disabled).
"""

from firmware.boards import mpboard
from firmware.boards.stdio import StdioSerial

PINS = {
    "relay": 15,  # engine enable (relay module input)
    "horn": 14,  # horn and lights (a buzzer and an LED on the bench)
    "led_green": 16,
    "led_red": 17,
    "ignition": 13,  # switch to GND = ignition on
    "blow_button": 12,  # push button to GND: take a sample from the potentiometer
    "purge": 11,  # purge pump (an LED on the bench)
    "sensor_adc": 26,  # ADC0: potentiometer standing in for the fuel cell
    "supply_adc": 28,  # ADC2: 12 V supply through a 47k/10k divider
    "supply_ratio_x1000": 5700,
    "keypad_rows": (2, 3, 4, 5),
    "keypad_cols": (6, 7, 8, 9),
    "lcd_i2c": 0,  # I2C0 on GP0 (SDA) / GP1 (SCL), PCF8574 backpack at 0x27
    "lcd_sda": 0,
    "lcd_scl": 1,
    "lcd_address": 0x27,
}


def build():
    return mpboard.build(PINS, "rp2", StdioSerial())


pause = mpboard.pause
