"""A simulated handset on a real pty or TCP port, with real provider keys, for host-tool tests.

`Bench` makes a provider key folder with the real key code (root key, master secret, a
technician key delegated with scopes), provisions a simulated LCI-777 with them, and
serves it through sim/serial_server.py in a thread, exactly as `lci-sim serve` does. The
tests then run the real `lci-tool` (its main(), or the console script) against `bench.url`.
"""

from __future__ import annotations

import threading
from pathlib import Path

from host_tools import keys, tokens
from sim.cable import CablePull
from sim.line import Faults
from sim.serial_server import SerialServer
from sim.simulator import Simulator

SERIAL = "LCI7-000123"


class Bench:
    def __init__(self, tmp: Path, *, endpoint: str = "pty", faults: Faults | None = None,
                 provisioned: bool = True, installed: bool = True, speed: float = 1.0,
                 directives: tuple = (), drives: int = 0, pull: CablePull | None = None):
        self.keys = tmp / "keys"
        made = keys.keygen(self.keys)
        self.root = keys.load_root_key(made["root_key"])
        self.master = keys.load_master_secret(made["master_secret"])
        self.tech_key = tmp / "tech.key"
        keys.delegate_to_file(made["root_key"], self.tech_key, "tech-jane",
                              ["unlock", "calibrate", "set_time"], days=365)
        identity = None
        if provisioned:
            identity = {
                "serial": SERIAL,
                "root_key": self.root.public_key.hex(),
                "device_secret": keys.derive_device_secret(self.master, SERIAL).hex(),
            }
        # the handset's clock reads today, as it would after its factory set-time
        self.sim = Simulator(seed=7, identity=identity, start_s=keys.core_now())
        if provisioned and installed:
            self.sim_token("work_order", {"order": "installation", "id": "WO-1", "vehicle": "VIN-1"})
        for action, args in directives:
            self.sim_token(action, args)
        for _ in range(drives):
            self.drive()
        self.server = SerialServer(self.sim, pty=endpoint == "pty",
                                   tcp_port=0 if endpoint == "tcp" else None,
                                   faults=faults, pull=pull, speed=speed)
        self.url = self.server.pty_path if endpoint == "pty" else self.server.tcp_url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def sim_token(self, action: str, args: dict) -> None:
        """Apply a root-signed token directly through the simulator (before serving)."""
        from sim.transport import open_client

        client = open_client(self.sim)
        now = client.status()["now"]
        client.submit_token(tokens.mint(self.root, SERIAL, action, args, now=now, ttl=3600,
                                        session_nonce=client.session_nonce))

    def drive(self) -> None:
        """One short sober drive on the virtual clock (before serving): start test, 20 min."""
        sim = self.sim
        sim.ignition(True)
        sim.advance(5_000)
        sim.blow(0)
        sim.advance(20 * 60_000)
        sim.ignition(False)
        sim.advance(60 * 60_000)

    def args(self, *more: str) -> list[str]:
        return ["--port", self.url, "--keys", str(self.keys), *more]

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=5)
        self.server.close()
