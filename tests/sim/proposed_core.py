"""The core with the bench-blow change proposed to the integrator (LCI-777 review, item 2).

firmware/device.py's Device.bench_blow computes a bench blow's fuel-cell reading from the
current gain ("the sensor assumed as calibrated"), so over the wire a simulated handset
always reads the dry-gas reference exactly. The proposal: prefer the hardware's own
`bench_sample(brac, volume_ml, temperature_dc)` when it has one (sim/hardware.py's
SimHardware, and sim/guest_hal.py's GuestHardware under MicroPython), so the simulated
fuel cell (drift, temperature, noise) produces the sample. `ProposedDevice.bench_blow` is
that change, word for word; `build` is a core factory for Simulator(core=...) under both
runtimes. Runs under MicroPython: no CPython-only features.
"""

from firmware import breath
from firmware.device import Device
from firmware.hal import BreathSample
from protocol import errors
from protocol.endpoint import Refused
from sim.core_adapter import CoreAdapter


class ProposedDevice(Device):
    def bench_blow(self, brac, volume_ml, temperature_dc):
        """A bench blow of a true BrAC: through the hardware's sensor model when it has one
        (the simulator), otherwise the sensor assumed as calibrated."""
        if not 0 <= brac <= breath.BRAC_MAX or not 0 <= volume_ml <= 20000 or not -500 <= temperature_dc <= 1500:
            raise Refused(errors.BAD_ARGUMENT, "blow out of range")
        bench_sample = getattr(self.hw, "bench_sample", None)
        if bench_sample is not None:
            sample = bench_sample(brac, volume_ml, temperature_dc)
        else:
            sample = BreathSample(volume_ml, temperature_dc, (brac * breath.GAIN_ONE + self.gain // 2) // self.gain)
        self.breath(sample)


def build(hw, config, identity):
    return CoreAdapter(hw, config, identity, ProposedDevice)
