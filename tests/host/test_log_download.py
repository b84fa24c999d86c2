"""A cable pulled in the middle of a log download: the tool reconnects and loses nothing."""

from __future__ import annotations

import json

from host_tools.device_client import DeviceClient
from host_tools.link import LinkError, SerialTransport
from host_tools.log_download import download
from host_tools.logverify import verify_file
from tests.host.sim_bench import Bench


class PulledCable:
    """A real serial transport that dies after `budget` bytes have come from the handset."""

    def __init__(self, url: str, budget: int):
        self.inner = SerialTransport(url)
        self.description = url
        self.budget = budget

    def write(self, data: bytes) -> None:
        if self.budget <= 0:
            raise LinkError(f"write to {self.description} failed: cable unplugged")
        self.inner.write(data)

    def read(self, timeout: float) -> bytes:
        if self.budget <= 0:
            raise LinkError(f"read from {self.description} failed: cable unplugged")
        data = self.inner.read(timeout)
        self.budget -= len(data)
        return data

    def close(self) -> None:
        self.inner.close()


def test_disconnect_during_download_resumes_after_reconnect(tmp_path):
    bench = Bench(tmp_path, endpoint="tcp", drives=25)  # a log of many pages
    try:
        budgets = iter([1500, 2500, 10**9])  # two pulled cables, then a good one
        connections = []

        def connect():
            client = DeviceClient.over(PulledCable(bench.url, next(budgets)), timeout=0.3)
            connections.append(client)
            client.hello()
            return client

        out = tmp_path / "log.jsonl"
        report = download(connect, out, say=lambda text: None, reconnects=5)
        assert report["chain_ok"], report
        assert report["records"] > 100 and report["resumes"] == 2
        assert len(connections) == 3  # both pulled cables were survived
        whole = verify_file(out)
        assert whole["chain_ok"] and whole["records"] == report["last"] - report["first"] + 1
        indexes = [json.loads(line)["index"] for line in out.read_text().splitlines()]
        assert indexes == sorted(set(indexes))  # no record twice, none missing
    finally:
        bench.stop()
