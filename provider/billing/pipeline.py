"""The daily run on two cores: a writer process holds the SQLite connection that reads due
accounts and writes their batches, while the engine runs the next batch's accounts.

On SQLite the daily run's database work (reading the due accounts, writing ~20 B-tree entries an
account, committing) happens in the caller's own thread, and the sqlite3 module holds the GIL
around every statement's bindings, so a thread cannot take it off the engine's core. A process
can. The engine and its writer talk over a socket pair, in plain rows (store.DueBatch,
store.Writes), a segment of batches at a time, each segment one transaction:

    engine                                   writer
    start(until, limit, batches)     ->      BEGIN IMMEDIATE; read batches 1 and 2, the next ids
    run batch 1; write(rows 1)       ->      write rows 1, read batch 3
    run batch 2 (meanwhile)
    wait for "written"; write(rows 2) ->     write rows 2, read batch 4
    ...                                      (no more than `batches` read in a segment)
    end(until if the day is done)    ->      set the clock if so; COMMIT

Batch k+1 is read before batch k is written. That is sound because a batch's accounts are not
read again once loaded: each leaves the due set when its rows are written (its run takes every
timer up to `until`), and the next batches are read after the last loaded key (next_due_at, id),
the order the one-process run takes them in. The rows, ids and numbers written are those of the
one-process run, batch for batch.

The writer holds the database's write lock from a segment's first read to its COMMIT, while the
engine runs those accounts and asks the processor for their charges: as in one process, no other
connection changes an account between its reading and the writing of its run (a payment taken in
the portal meanwhile waits, then sees the run's charge; it never races it with the same key or
charges twice). Between segments nothing is in flight and others get their turn: they wait at
most a segment (SEGMENT_BATCHES batches), as in one process they wait at most a batch.

A crash of either side commits nothing half-done: a killed writer's open transaction is rolled
back by SQLite; when the engine dies, the writer reads end-of-file, rolls back and exits. Either
way the segment's charges are asked again, with the same keys, by the next run (the processor
answers as it did), as after a crash of the one-process run.
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
from .faults import crash_point
from .store import DAILY_IDS, Store, UnitOfWork, Writes, next_ids, works_of, write

_START = "start"
_WRITE = "write"
_END = "end"
_STOP = "stop"
_STOP_SECONDS = 30  # the longest a writer may take to finish its batch and stop
SEGMENT_BATCHES = 12  # batches a segment (one transaction) at most


class WriterLost(RuntimeError):
    """The writer process ended without answering."""


class Writer:
    """The engine's side of the writer process: a fresh interpreter (sharing no SQLite handle,
    lock or thread with the engine, and not re-running the caller's main script as
    multiprocessing's spawn would), spoken to over a socket pair in pickled messages."""

    def __init__(self, location: str):
        ours, theirs = socket.socketpair()
        # this very package, whatever the working directory holds (`python -c` puts it first)
        package_root = str(Path(__file__).resolve().parents[2])
        try:
            with theirs:
                # a session of its own: a terminal's Ctrl-C or hang-up is the engine's to act on
                self.process = subprocess.Popen(
                    [sys.executable, "-c", _WRITER_MAIN, package_root, str(theirs.fileno()),
                     location], pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                    start_new_session=True)
        except BaseException:
            ours.close()
            raise
        self.pipe = Connection(ours.detach())
        self.cpu_seconds = 0.0  # the writer's CPU time, known once it stops
        # a message half sent or half received (the engine interrupted in between): the pipe's
        # framing is lost, so the writer is stopped by closing it, not by a message
        self._torn = False

    def send(self, *message) -> None:
        self._torn = True
        try:
            self.pipe.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError) as exc:
            raise self._lost() from exc
        self._torn = False

    def receive(self) -> tuple:
        self._torn = True
        try:
            reply = self.pipe.recv()
        except (EOFError, ConnectionResetError, OSError) as exc:
            raise self._lost() from exc
        self._torn = False
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
        """Stop the writer once it has answered what was sent (a segment still open is rolled
        back: only a segment's end commits it); whatever happens, the writer is gone on return."""
        try:
            if self.process.poll() is None and not self._torn:
                self.pipe.send((_STOP,))
                while self.pipe.poll(_STOP_SECONDS):
                    reply = self.pipe.recv()
                    if reply[0] == "stopped":
                        self.cpu_seconds = reply[1]
                        break
        except Exception:  # noqa: BLE001 - the writer is stopped below all the same
            pass
        finally:
            self.pipe.close()  # a writer still reading sees end-of-file and exits
            try:
                self.process.wait(timeout=_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run(writer: Writer, conn, run_account, until: int, limit: int, ordered: tuple,
        segment: int = 0) -> tuple[int, int]:
    """The rest of the day's run to `until` through the writer, `limit` accounts a batch, at
    most `segment` batches a transaction (default SEGMENT_BATCHES), each account run by
    `run_account(work, until, uow)`; the accounts and batches run. `conn` is the engine's own
    connection (a stored directive it looks up is read there: it was committed before)."""
    processed = batches = 0
    while True:
        writer.send(_START, until, limit, ordered, segment or SEGMENT_BATCHES)
        _, ids, first, second, day_read = writer.receive()
        queue = deque(b for b in (first, second) if b is not None)
        known: dict = {}  # serial -> last recall or lockout, across the segment's batches
        sent = None  # the batch sent and not yet acknowledged
        while queue:
            batch = queue.popleft()
            uow = UnitOfWork(conn, next_id=ids, last_ordered=known)
            for w in works_of(batch, uow):
                run_account(w, until, uow)
            writes = uow.writes()
            if sent is not None:
                _, ahead, day_read = writer.receive()  # the previous batch written
                processed, batches = processed + len(sent.rows), batches + 1
                if ahead is not None:
                    queue.append(ahead)
            writer.send(_WRITE, writes)
            sent = batch
            crash_point()  # written, not committed
        if sent is not None:
            _, _, day_read = writer.receive()
            processed, batches = processed + len(sent.rows), batches + 1
        writer.send(_END, until if day_read else None)
        writer.receive()
        crash_point()  # committed
        if day_read:
            return processed, batches


# ---------------------------------------------------------------------- the writer process
_WRITER_MAIN = ("import sys; sys.path.insert(0, sys.argv[1]); "
                "from provider.billing.pipeline import main; main()")


def main() -> None:
    """The writer process's entry point: argv is the package's root, the socket's file
    descriptor and the database.
    Ctrl-C at a terminal reaches the whole process group: the engine decides what it stops (it
    stops the writer in turn), so the writer ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(Connection(int(sys.argv[2])), sys.argv[3])


def serve(pipe, location: str) -> None:
    """The writer process: a transaction a segment, until told to stop or the engine is gone
    (then what the segment wrote is rolled back)."""
    db = database.connect(location)
    # a segment is a long transaction: each many-row statement in it journals the pages it
    # changes that the segment changed before (to undo the statement alone); in memory, not in
    # temporary files (190 MB of writes at 100,000 accounts; as files it cost the day ~20 %)
    db.execute("PRAGMA temp_store = MEMORY")
    state = _State(Store(db))
    try:
        while True:
            try:
                message = pipe.recv()
            except (EOFError, OSError):
                return  # the engine is gone
            if message[0] == _STOP:
                with contextlib.suppress(OSError):
                    pipe.send(("stopped", time.process_time()))
                return
            try:
                reply = state.handle(message)
            except Exception as exc:  # noqa: BLE001 - handed to the engine, which raises it
                state.abandon()
                reply = ("error", _portable(exc))
            try:
                pipe.send(reply)
            except OSError:
                return  # the engine is gone
    finally:
        state.abandon()
        db.close()


class _State:
    """The writer's segment: its transaction and where its reading is."""

    def __init__(self, store: Store):
        self.store = store
        self.open = False  # a segment's transaction is open
        self.until = self.limit = self.after = None
        self.ordered = ()
        self.left = 0  # batches the segment may still read
        self.day_read = True  # every due account of the day has been read

    def abandon(self) -> None:
        if self.open:
            self.open = False
            self.store.conn.execute("ROLLBACK")

    def handle(self, message: tuple) -> tuple:
        kind = message[0]
        if kind == _START:
            _, self.until, self.limit, self.ordered, self.left = message
            self.after, self.day_read = None, False
            self.store.conn.execute("BEGIN IMMEDIATE")
            self.open = True
            ids = next_ids(self.store.conn, DAILY_IDS)
            first = self._read()
            return ("started", ids, first, self._read(), self.day_read)
        if not self.open:
            raise ValueError(f"{kind!r} outside a segment")
        if kind == _WRITE:
            write(self.store.conn, Writes(*message[1]))
            return ("written", self._read(), self.day_read)
        if kind == _END:
            if message[1] is not None:
                self.store.set_clock(message[1])
            self.store.conn.execute("COMMIT")
            self.open = False
            return ("ended",)
        raise ValueError(f"unknown message {kind!r}")

    def _read(self):
        """The next batch after the last one read (None: none left in the day or the segment)."""
        if self.day_read or not self.left:
            return None
        self.left -= 1
        batch = self.store.read_due(self.until, self.limit, self.ordered, self.after)
        if len(batch.rows) < self.limit:
            self.day_read = True  # every due account is in this batch or an earlier one
        if not batch.rows:
            return None
        self.after = batch.after()
        return batch


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
