"""The daily run on two cores: a writer process holds the SQLite connection that reads due
accounts and writes their batches, while the engine runs the next batch's accounts.

On SQLite the daily run's database work (reading the due accounts, writing ~20 B-tree entries an
account, committing) happens in the caller's own thread, and the sqlite3 module holds the GIL
around every statement's bindings, so a thread cannot take it off the engine's core. A process
can. The engine and its writer talk over a pipe, in plain rows (store.DueBatch, store.Writes):

    engine                                   writer (one transaction a message)
    start(until, limit)              ->      read batches 1 and 2, the tables' next ids
    run batch 1; write(rows 1)       ->      write rows 1, read batch 3, COMMIT
    run batch 2 (meanwhile)
    wait for "written"; write(rows 2) ->     write rows 2, read batch 4, COMMIT
    ...
    finish(until)                    ->      set the clock, COMMIT

Batch k+1 is read before batch k is written. That is sound because a batch's accounts are not
read again once loaded: each leaves the due set when its rows are written (its run takes every
timer up to `until`), and the next batches are read after the last loaded key (next_due_at, id),
the order the one-process run takes them in. The rows, ids and numbers written are those of the
one-process run, batch for batch.

What the engine read must still be true when its rows are written. The writer is the database's
only writer while the run goes on, unless someone else commits between its transactions (the
portal taking a payment, an operator's command). `PRAGMA data_version` tells: it changes when
another connection commits. The writer reads it after each COMMIT and again once it holds the
write lock; when they differ it rolls back and answers "conflict", and the engine drops what it
computed since and runs the rest of the day in one process, from the database as it now is. The
charges it had made are asked again with the same keys (the processor answers as it did), just as
after a crash.

A crash of either side loses nothing committed and commits nothing half-done: the writer's
transactions never wait on the pipe (each message is a whole transaction), a killed writer's open
transaction is rolled back by SQLite, and when the engine dies the writer reads end-of-file and
exits. Batch k's rows, once sent, are written whole or not at all, as in one process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path

from . import database
from .store import DAILY_IDS, Store, Writes, next_ids, write

_START = "start"
_WRITE = "write"
_FINISH = "finish"
_STOP = "stop"


class Conflict(Exception):
    """Another connection committed between two of the writer's transactions."""


class WriterLost(RuntimeError):
    """The writer process ended without answering."""


class Writer:
    """The engine's side of the writer process: a fresh interpreter (sharing no SQLite handle,
    lock or thread with the engine, and not re-running the caller's main script as
    multiprocessing's spawn would), spoken to over a socket pair in pickled messages."""

    def __init__(self, location: str):
        ours, theirs = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from provider.billing.pipeline import main; main()",
                 str(theirs.fileno()), location], pass_fds=[theirs.fileno()], env=env,
                stdin=subprocess.DEVNULL)
        self.pipe = Connection(ours.detach())
        self.cpu_seconds = 0.0  # the writer's CPU time, known once it stops

    def send(self, *message) -> None:
        try:
            self.pipe.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError) as exc:
            raise self._lost() from exc

    def receive(self) -> tuple:
        try:
            reply = self.pipe.recv()
        except (EOFError, ConnectionResetError, OSError) as exc:
            raise self._lost() from exc
        if reply[0] == "conflict":
            raise Conflict()
        if reply[0] == "error":
            raise reply[1]
        return reply

    def _lost(self) -> WriterLost:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return WriterLost(f"the billing writer process stopped (exit code {code})")

    def close(self) -> None:
        """Stop the writer once it has answered everything sent (its last transaction commits)."""
        if self.process.poll() is None:
            try:
                self.pipe.send((_STOP,))
                while True:
                    reply = self.pipe.recv()
                    if reply[0] == "stopped":
                        self.cpu_seconds = reply[1]
                        break
            except (OSError, EOFError):
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.pipe.close()


def run(writer: Writer, conn, run_account, until: int, limit: int, ordered: tuple,
        processed: int, batches: int):
    """The rest of the day's run to `until` through the writer, `limit` accounts a batch, each
    account run by `run_account(work, until, uow)`: the totals (accounts processed, batches), or
    None when another connection committed meanwhile (nothing of this call's uncommitted work is
    kept: the caller goes on in one process). `conn` is the engine's own connection (a stored
    directive it looks up is read there, committed)."""
    from .faults import crash_point
    from .store import UnitOfWork, works_of

    try:
        writer.send(_START, until, limit, ordered)
        _, ids, first, second = writer.receive()
        queue = deque(b for b in (first, second) if b is not None)
        known: dict = {}  # serial -> last recall or lockout, across the run's batches
        in_flight = 0  # accounts sent in the batch not yet acknowledged
        while queue:
            batch = queue.popleft()
            uow = UnitOfWork(conn, next_id=ids, last_ordered=known)
            for w in works_of(batch, uow):
                run_account(w, until, uow)
            writes = uow.writes()
            if in_flight:
                _, ahead = writer.receive()  # the previous batch committed
                processed, batches, in_flight = processed + in_flight, batches + 1, 0
                crash_point()
                if ahead is not None:
                    queue.append(ahead)
            writer.send(_WRITE, writes)
            in_flight = len(batch.rows)
            crash_point()
        if in_flight:
            writer.receive()
            processed, batches = processed + in_flight, batches + 1
            crash_point()
        writer.send(_FINISH, until)
        writer.receive()
        crash_point()
    except Conflict:
        return None
    return processed, batches


# ---------------------------------------------------------------------- the writer process
def main() -> None:
    """The writer process's entry point: argv is the socket's file descriptor and the database.
    Ctrl-C at a terminal reaches the whole process group: the engine decides what it stops (it
    stops the writer in turn), so the writer ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(Connection(int(sys.argv[1])), sys.argv[2])


def serve(pipe, location: str) -> None:
    """The writer process: one transaction a message, until told to stop or the engine is gone."""
    db = database.connect(location)
    store = Store(db)
    state = _State()
    try:
        while True:
            try:
                message = pipe.recv()
            except (EOFError, OSError):
                return  # the engine is gone: nothing is open
            if message[0] == _STOP:
                with contextlib.suppress(OSError):
                    pipe.send(("stopped", time.process_time()))
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                reply = state.handle(store, message)
                db.execute("COMMIT")
            except Conflict:
                db.execute("ROLLBACK")
                state.reset()
                reply = ("conflict",)
            except Exception as exc:  # noqa: BLE001 - handed to the engine, which raises it
                db.execute("ROLLBACK")
                state.reset()
                reply = ("error", _portable(exc))
            state.version = _data_version(db)
            try:
                pipe.send(reply)
            except OSError:
                return  # the engine is gone: what it sent is committed or rolled back, whole
    finally:
        db.close()


class _State:
    """What the writer remembers between transactions of one run."""

    def __init__(self):
        self.version = None  # data_version after this connection's last COMMIT
        self.reset()

    def reset(self) -> None:
        self.until = self.limit = self.after = None
        self.ordered = ()
        self.exhausted = True

    def handle(self, store: Store, message: tuple) -> tuple:
        kind = message[0]
        if kind == _START:
            _, self.until, self.limit, self.ordered = message
            self.after, self.exhausted = None, False
            first = self._read(store)
            return ("started", next_ids(store.conn, DAILY_IDS), first, self._read(store))
        if self.version is None or _data_version(store.conn) != self.version:
            raise Conflict()
        if kind == _WRITE:
            writes = Writes(*message[1])
            write(store.conn, writes)
            return ("written", self._read(store))
        if kind == _FINISH:
            store.set_meta("now", str(message[1]))
            self.reset()
            return ("finished",)
        raise ValueError(f"unknown message {kind!r}")

    def _read(self, store: Store):
        """The next batch after the last one read (None: none left)."""
        if self.exhausted:
            return None
        batch = store.read_due(self.until, self.limit, self.ordered, self.after)
        if len(batch.rows) < self.limit:
            self.exhausted = True  # every due account is in this batch or an earlier one
        if not batch.rows:
            return None
        self.after = batch.after()
        return batch


def _data_version(db) -> int:
    return db.execute("PRAGMA data_version").fetchone()[0]


def _portable(exc: Exception) -> Exception:
    """The exception itself when it crosses the pipe intact, else a RuntimeError saying it."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def usable(conn) -> bool:
    """Whether a writer process can share this connection's database: a SQLite file."""
    if conn.dialect != database.SQLITE or os.name != "posix":  # (file descriptors passed)
        return False
    path = database.sqlite_path(conn.location)
    return path not in ("", ":memory:") and not path.startswith("file:") and os.path.exists(path)
