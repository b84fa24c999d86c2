"""An in-process Transport for host_tools/link.Link: the host talks to a Simulator, no pty.

The second implementation of the link's Transport interface (after mpremote's shape):
`write` puts bytes on the cable towards the simulated handset, `read(timeout)` waits for
bytes from it — on the VIRTUAL clock: waiting lets the simulated world run (the core
steps at its deadlines) up to `timeout` of simulated time, and never sleeps. Give the
Link this transport's `clock` so its own timeouts and retransmissions count virtual time:

    transport = SimTransport(sim)
    link = Link(transport, clock=transport.clock)     # or open_client(sim)

Line-rate pacing (`baud`) and seeded faults (sim/line.py) apply per direction, so a test
of a lossy 115200-baud link is exact and instant.
"""

from __future__ import annotations

from host_tools.device_client import DeviceClient
from host_tools.link import Link
from sim.line import Faults, Line
from sim.simulator import Simulator


def _ceil_ms(us: int) -> int:
    return -(-us // 1000)


class SimTransport:
    def __init__(
        self,
        sim: Simulator,
        *,
        baud: int = 0,
        faults: Faults | None = None,
        faults_to_device: Faults | None = None,
    ):
        self.sim = sim
        self.description = f"sim:{sim.runtime_name}:seed={sim.seed}"
        self.to_device = Line(baud, faults_to_device)
        self.to_host = Line(baud, faults)
        self.closed = False
        self.plugged = False
        self.plug()

    # -- the cable ---------------------------------------------------------------------------------
    def plug(self) -> None:
        """Connect the cable: from now on the handset's bytes reach this host."""
        if not self.plugged:
            self.plugged = True
            self.sim.serial_sinks.append(self._from_device)

    def unplug(self) -> None:
        """Pull the cable: what the handset sends meanwhile is lost, as on a real port."""
        if self.plugged:
            self.plugged = False
            self.sim.serial_sinks.remove(self._from_device)
            self.to_host.clear()

    # -- clock -----------------------------------------------------------------------------------
    def clock(self) -> float:
        """Virtual seconds: hand this to Link(clock=...)."""
        return self.sim.t_ms / 1000

    def _now_us(self) -> int:
        return self.sim.t_ms * 1000

    def _from_device(self, data: bytes) -> None:
        self.to_host.send(data, self._now_us())

    def _deliver_to_device(self) -> None:
        data = self.to_device.due(self._now_us())
        if data:
            self.sim.serial_in(data)

    # -- Transport -----------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        self.to_device.send(bytes(data), self._now_us())
        self._deliver_to_device()

    def read(self, timeout: float) -> bytes:
        end_ms = self.sim.t_ms + max(0, int(round(timeout * 1000)))
        while True:
            self._deliver_to_device()
            data = self.to_host.due(self._now_us())
            if data:
                return data
            if self.sim.t_ms >= end_ms:
                return b""
            candidates = [end_ms]
            for line in (self.to_device, self.to_host):
                due = line.next_due_us()
                if due is not None:
                    candidates.append(_ceil_ms(due))
            deadline = self.sim.next_deadline_ms()
            if deadline is not None:
                candidates.append(deadline)
            self.sim.run_until(max(self.sim.t_ms, min(candidates)))

    def close(self) -> None:
        self.closed = True
        self.unplug()


def open_link(sim: Simulator, *, timeout: float = 0.5, retries: int = 4, **line) -> Link:
    transport = SimTransport(sim, **line)
    return Link(transport, timeout=timeout, retries=retries, clock=transport.clock)


def open_client(sim: Simulator, *, timeout: float = 0.5, retries: int = 4, **line) -> DeviceClient:
    """A host_tools DeviceClient talking to `sim` in-process, on its virtual clock."""
    return DeviceClient(open_link(sim, timeout=timeout, retries=retries, **line))
