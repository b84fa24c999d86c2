"""The in-process transport: host_tools.link.Link talks to a simulated core on the virtual clock."""

from __future__ import annotations

from host_tools.link import Link
from protocol import framing, messages
from sim.line import Faults
from sim.simulator import Simulator
from sim.transport import SimTransport, open_client
from tests.sim.conftest import FAKE_CORE


def test_ping_and_hello_through_link_without_waiting(fake_sim):
    client = open_client(fake_sim)
    assert client.ping(b"abc") == b"abc"
    assert client.hello()["serial"] == "FAKE-1"
    assert fake_sim.t_ms == 0  # replies came at once: no virtual time passed


def test_timeouts_pass_on_the_virtual_clock(fake_sim):
    transport = SimTransport(fake_sim)
    link = Link(transport, clock=transport.clock, timeout=2.0, retries=0)
    fake_sim.power_cut()  # nobody answers
    try:
        link.request(messages.PING, data=b"x")
    except Exception as exc:
        assert "no reply" in str(exc)
    else:
        raise AssertionError("a dead handset answered")
    assert fake_sim.t_ms == 2000  # exactly the link's timeout, in virtual time


def test_line_rate_is_paced_on_the_virtual_clock(fake_sim):
    transport = SimTransport(fake_sim, baud=9600)
    link = Link(transport, clock=transport.clock, timeout=5.0)
    data = b"z" * 400
    assert link.request(messages.PING, data=data) == {"data": data}
    wire = 2 * len(framing.encode(framing.Frame(messages.PING, data)))
    expected_ms = wire * 10 * 1000 / 9600
    assert expected_ms - 5 <= fake_sim.t_ms <= expected_ms + 5


def test_faulty_line_is_survived_by_retransmission():
    sim = Simulator(seed=2, core=FAKE_CORE)
    transport = SimTransport(sim, faults=Faults(7, drop=0.003, duplicate=0.003, corrupt=0.003),
                             faults_to_device=Faults(8, drop=0.003, corrupt=0.003))
    link = Link(transport, clock=transport.clock, timeout=0.5, retries=10)
    for i in range(30):
        payload = bytes([i]) * 40
        assert link.request(messages.PING, data=payload)["data"] == payload
    damage = transport.to_host.faults.stats()
    assert sum(damage.values()) > 0
    assert link.retransmissions > 0
    sim.close()
