"""The link service: one asyncio process accepting handsets' calls over TCP (TLS if configured).

Each accepted connection is one provider.link.session.Session on the event loop; thousands
wait on their sockets at no cost. PostgreSQL is reached from one worker thread (a DB-API
connection is not shared between threads, and the event loop never waits on the network to the
database), so one process needs one connection. A SQLite file is local and its statements take
microseconds: they run on the event loop itself (handing each to a thread costs more than it
saves, in GIL hand-overs); a long billing transaction on the same file then holds the calls up
while it lasts, which is why a deployment uses PostgreSQL. Several link processes may serve the
same database (docs/link.md: scaling out): every write is idempotent, a directive is claimed in
the database by one call at a time (store.claim), and its exactly-once application rests on the
handset's own replay protection, not on one process's memory.

TLS: give an ssl.SSLContext (`server_context()` builds one from a certificate and key). With
`client_ca`, the handset must present a certificate signed by that CA, and its common name must
be the serial it announces in HELLO; otherwise the call is refused before any directive goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import ssl
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from provider.link import store
from provider.link.host import AsyncHost
from provider.link.session import Session


def server_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2 or later); with client_ca, client certificates required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _common_name(peercert: dict | None) -> str | None:
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


UNLIMITED_LEASE = 86400  # seconds a claim of a call without a time limit holds if the call vanishes


class Stats:
    def __init__(self) -> None:
        self.connections = 0
        self.active = 0
        self.sessions_ok = 0
        self.sessions_incomplete = 0
        self.delivered = 0
        self.refused = 0
        self.records = 0
        self.log_refusals = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class LinkServer:
    def __init__(self, db_url: str, *, clock: Callable[[], float] = time.time,
                 ssl_context: ssl.SSLContext | None = None, timeout: float | None = 5.0,
                 slow_timeout: float | None = 10.0, retries: int = 2,
                 session_timeout: float | None = 120.0,
                 on_session: Callable[[dict], None] | None = None, portal=None):
        """`timeout`, `slow_timeout`: seconds a request waits for its reply before it is resent;
        `session_timeout`: seconds a whole call may last; None for any of them: no limit (a
        handset that stops answering is then only noticed when its connection ends).
        `portal`: a provider.link.portal.PortalReports that each call's STATUS is given to."""
        self.db_url = db_url
        self.portal = portal
        self.clock = clock
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.slow_timeout = slow_timeout
        self.retries = retries
        self.session_timeout = session_timeout
        self.on_session = on_session
        self.stats = Stats()
        # this process among the link processes sharing the database (claims name it)
        self.name = f"{socket.gethostname()[:12]}:{os.getpid()}:{os.urandom(3).hex()}"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="link-db")
        self._db: store.Database | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self.address: tuple[str, int] | None = None

    # -- database ----------------------------------------------------------------------------------
    def _open(self) -> None:
        self._db = store.connect(self.db_url)
        store.create(self._db)

    async def db(self, fn, *args, **kwargs):
        """Run a provider.link.store function on the database thread (SQLite: at once)."""
        if self._db is not None and self._db.dialect == "sqlite":
            return fn(self._db, *args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor,
                                          functools.partial(fn, self._db, *args, **kwargs))

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Open the database (raises store.StoreError) and listen; returns the bound address."""
        if self.db_url.startswith(("postgresql://", "postgres://")):
            await asyncio.get_running_loop().run_in_executor(self._executor, self._open)
        else:
            self._open()
        if self.portal is not None:
            await self.portal.start()
        self._server = await asyncio.start_server(self._handle, host, port, ssl=self.ssl_context,
                                                  backlog=4096)
        sock = self._server.sockets[0].getsockname()
        self.address = (sock[0], sock[1])
        return self.address

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def quiet(self) -> None:
        """Wait until every call in progress has ended and recorded its outcome."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._db is not None:
            db = self._db
            self._db = None
            if db.dialect == "sqlite":
                db.close()
            else:
                await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=True)
        if self.portal is not None:
            self.portal.close()

    # -- one connection ------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.stats.connections += 1
        self.stats.active += 1
        peer = writer.get_extra_info("peername")
        host = AsyncHost(reader, writer, timeout=self.timeout, slow_timeout=self.slow_timeout,
                         retries=self.retries, description=f"handset at {peer[0]}:{peer[1]}" if peer else "handset")
        peer_serial = None
        if self.ssl_context is not None and self.ssl_context.verify_mode == ssl.CERT_REQUIRED:
            peer_serial = _common_name(writer.get_extra_info("peercert")) or ""
        # a claim outlives the longest call; a call with no time limit claims for UNLIMITED_LEASE
        lease = UNLIMITED_LEASE if self.session_timeout is None else int(self.session_timeout) + 1
        session = Session(host, self.db, self.clock, peer_serial=peer_serial,
                          owner=f"{self.name}:{self.stats.connections}", lease=lease)
        try:
            try:
                async with asyncio.timeout(self.session_timeout):
                    await session.run()
            except TimeoutError:
                session.outcome = f"incomplete: the call took longer than {self.session_timeout:g} s"
            except Exception as exc:  # a database error, a bug: this call ends, the service goes on
                session.outcome = f"incomplete: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                print(f"lci-server link: call from {session.serial or host.description} failed: "
                      f"{session.outcome}", file=sys.stderr, flush=True)
            if self.portal is not None and session.serial and session.status is not None:
                await self.portal.record(session.serial, session.status, int(self.clock()))
            self._count(session)
            if self.on_session is not None:
                self.on_session(session.summary())
        finally:
            self.stats.active -= 1
            with contextlib.suppress(Exception):
                await host.close()
            if task is not None:
                self._tasks.discard(task)

    def _count(self, session: Session) -> None:
        s = self.stats
        if session.outcome == "ok":
            s.sessions_ok += 1
        elif session.outcome.startswith("log refused"):
            s.sessions_ok += 1
            s.log_refusals += 1
        else:
            s.sessions_incomplete += 1
        s.delivered += len(session.delivered)
        s.refused += len(session.refused)
        s.records += session.uploaded


class ThreadedLinkServer:
    """A LinkServer on its own event loop in a background thread, for a synchronous caller (the
    demo): start() returns the address once it listens, stop() ends the calls and the loop."""

    def __init__(self, db_url: str, **kwargs):
        import threading

        self.server = LinkServer(db_url, **kwargs)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="link-server", daemon=True)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self.server.start(host, port), self.loop).result()

    def stop(self) -> None:
        async def shut() -> None:
            await self.server.quiet()
            await self.server.close()

        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(shut(), self.loop).result()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
        self.loop.close()
