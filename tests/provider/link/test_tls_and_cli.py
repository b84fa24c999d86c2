"""The link over TLS (certificates made here with `cryptography`), handset certificates that must
name the serial, and `lci-server link` as a process."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from protocol.coretime import EPOCH_UNIX
from provider.link import store
from provider.link.server import server_context
from sim.uplink import dial_async

from .rig import World, run, start_server

SERIAL = "LCI-T-0001"
OTHER = "LCI-T-0002"
LCI_SERVER = str(Path(sys.executable).with_name("lci-server"))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(folder: Path, stem: str, key, cert) -> tuple[str, str]:
    key_path, cert_path = folder / f"{stem}.key", folder / f"{stem}.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_path), str(key_path)


class Authority:
    """A self-signed CA that issues the server's and the handsets' certificates."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(_name("LCI test CA")).issuer_name(_name("LCI test CA"))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path, _ = _write(folder, "ca", self.key, self.cert)

    def issue(self, cn: str, *, server: bool = False) -> tuple[str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=30)))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return _write(self.folder, cn, key, builder.sign(self.key, hashes.SHA256()))

    def client_context(self, cn: str | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cert_path)
        if cn is not None:
            context.load_cert_chain(*self.issue(cn))
        return context


def test_the_link_over_tls_delivers_and_a_handset_that_cannot_verify_the_server_gets_nothing(tmp_path):
    world = World(tmp_path, [SERIAL])
    world.until_directive(SERIAL, "recall")
    ca = Authority(tmp_path)
    server_cert, server_key = ca.issue("localhost", server=True)
    sim = world.sims[SERIAL]

    async def calls():
        server, host, port = await start_server(world, ssl_context=server_context(server_cert, server_key))
        untrusting = ssl.create_default_context()  # does not know the test CA
        refused = await dial_async(sim, host, port, ssl=untrusting, server_hostname="localhost")
        await server.quiet()
        before = store.deliveries(world.link_db(), SERIAL)
        trusted = await dial_async(sim, host, port, ssl=ca.client_context(), server_hostname="localhost")
        await server.quiet()
        await server.close()
        return refused, before, trusted

    refused, before, trusted = run(calls())
    assert not refused["ok"] and "CERTIFICATE_VERIFY_FAILED" in refused["error"]
    assert before == []
    assert trusted["ok"]
    [delivery] = store.deliveries(world.link_db(), SERIAL)
    assert delivery["status"] == "delivered"
    assert store.records(world.link_db(), SERIAL) == world.device_records(sim)


def test_a_handset_certificate_must_name_the_serial_the_handset_announces(tmp_path):
    world = World(tmp_path, [SERIAL, OTHER])
    world.until_directive(SERIAL, "recall")
    ca = Authority(tmp_path)
    server_cert, server_key = ca.issue("localhost", server=True)
    context = server_context(server_cert, server_key, client_ca=ca.cert_path)
    summaries = []

    async def calls():
        server, host, port = await start_server(world, ssl_context=context, on_session=summaries.append)
        # OTHER's certificate on SERIAL's handset (or an impostor claiming SERIAL)
        borrowed = await dial_async(world.sims[SERIAL], host, port, ssl=ca.client_context(OTHER),
                                    server_hostname="localhost")
        no_cert = await dial_async(world.sims[SERIAL], host, port, ssl=ca.client_context(),
                                   server_hostname="localhost")
        await server.quiet()
        calls_before_own = len(summaries)
        after_impostors = store.deliveries(world.link_db(), SERIAL)
        own = await dial_async(world.sims[SERIAL], host, port, ssl=ca.client_context(SERIAL),
                               server_hostname="localhost")
        await server.quiet()
        await server.close()
        return borrowed, no_cert, calls_before_own, after_impostors, own

    borrowed, no_cert, calls_before_own, after_impostors, own = run(calls())
    assert borrowed["ok"] and summaries[0]["outcome"] == (
        f"certificate names {OTHER}, handset says {SERIAL}: hung up")
    # without a certificate the TLS handshake fails on the server's side: no call, no session
    # (under TLS 1.3 the handset learns it only as the connection closing)
    assert calls_before_own == 1
    assert after_impostors == [] and store.handsets(world.link_db())[0]["serial"] == SERIAL
    assert own["ok"]
    assert [d["status"] for d in store.deliveries(world.link_db(), SERIAL)] == ["delivered"]
    assert world.accepted_tokens(world.sims[SERIAL])[-1].startswith("recall ")


def _start_cli(*args: str) -> tuple[subprocess.Popen, tuple[str, int]]:
    process = subprocess.Popen([LCI_SERVER, "link", "--listen", "127.0.0.1:0", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert line.startswith("listening on "), line + process.stderr.read()
    host, port = line.split()[2].rsplit(":", 1)
    return process, (host, int(port))


def signs_what_billing_left_pending(tmp_path, url: str | None = None) -> World:
    """Billing ran without keys: its directives wait unsigned; `lci-server link --keys` signs
    them and delivers them (on the SQLite file, or on the PostgreSQL database at `url`)."""
    now_core = int(time.time()) - EPOCH_UNIX
    world = World(tmp_path, [SERIAL], start=now_core - 8 * 86400, signed=False, url=url)
    world.until_directive(SERIAL, "recall")
    world.advance(now_core - (world.start + world.t) + 3600)  # the link signs on the real clock
    assert [d["status"] for d in world.directives(SERIAL)] == ["pending"]
    keys = tmp_path / "keys"
    world.provider.save(keys)
    process, (host, port) = _start_cli("--db", world.db_path, "--keys", str(keys))
    try:
        assert process.stdout.readline().strip() == "signed 1 pending directive(s)"
        result = asyncio.run(dial_async(world.sims[SERIAL], host, port))
        line = process.stdout.readline().strip()
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert result["ok"], result
    assert line.startswith(f"{SERIAL}: ok; delivered recall #1 (token)")
    assert process.returncode == 0 and err == ""
    assert out.startswith("stopped: 1 calls, 1 directives delivered")
    assert [d["status"] for d in world.directives(SERIAL)] == ["issued"]
    assert world.accepted_tokens(world.sims[SERIAL])[-1].startswith("recall billing-sim")
    return world


def test_lci_server_link_serves_calls_and_signs_what_billing_left_pending(tmp_path):
    signs_what_billing_left_pending(tmp_path)


def test_lci_server_link_bad_usage_is_one_line(tmp_path):
    cases = [
        (["--db", str(tmp_path / "nothing.db")], 2, "no such billing database"),
        (["--db", "x.db", "--tls-cert", "c.pem"], 2, "--tls-cert and --tls-key go together"),
        (["--db", "x.db", "--listen", "nowhere"], 2, "is not HOST:PORT"),
        (["--db", "x.db", "--timeout", "0"], 2, "must be above 0"),
        (["--db", "postgresql://nobody@127.0.0.1:1/db"], 2, "cannot connect to"),
    ]
    for args, code, text in cases:
        done = subprocess.run([LCI_SERVER, "link", *args], capture_output=True, text=True, timeout=30,
                              env=dict(os.environ))
        assert done.returncode == code, (args, done.stderr)
        assert text in done.stderr and done.stdout == ""
        assert "Traceback" not in done.stderr
    blank = tmp_path / "blank.db"
    blank.write_bytes(b"")
    done = subprocess.run([LCI_SERVER, "link", "--db", str(blank)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stderr.strip().endswith("no directive table (lci-billing init first)")
    assert len(done.stderr.strip().splitlines()) == 1
