"""An event loop for tests whose server and handsets all live on it: timeouts count only the time
the loop would spend idle, and a stall fails the run instead of hanging it.

Every peer of such a test is on the loop, so the loop is idle — no callback ready, no byte
arriving, no worker thread busy — only when every task waits for a timer or for bytes that no
one is going to send. So:
- the loop's clock (`loop.time()`, which asyncio's timeouts read) stands still while the loop
  works and jumps to the next timer when the loop is idle: a request's timeout fires only when
  its reply cannot come any more, however slow or loaded the machine;
- idle with no timer set (calls that wait with no time limit, timeout None) is a stall: the
  loop raises Stalled, naming where its tasks wait.
Before either, an idle loop waits `SETTLE` seconds for a byte still in flight between its own
sockets (`idle_limit` before a stall): a bound on the kernel, not on the work, since busy time
never counts.
"""

from __future__ import annotations

import asyncio
import os
import selectors
from collections.abc import Coroutine

SETTLE = 0.05  # seconds an idle loop waits for a byte in flight before it jumps to its next timer
IDLE_LIMIT = 30.0  # seconds an idle loop with no timer waits for one before it calls it a stall


class Stalled(AssertionError):
    """Every task on the loop waits and nothing can wake any of them."""


_ASYNCIO = os.path.dirname(asyncio.__file__)


def _where(task: asyncio.Task) -> str:
    """The innermost coroutine outside asyncio that the task waits in, as `name (file:line)`."""
    frame = None
    awaited: object = task.get_coro()
    while (inner := getattr(awaited, "cr_frame", None)) is not None:
        if not inner.f_code.co_filename.startswith(_ASYNCIO):
            frame = inner
        awaited = getattr(awaited, "cr_await", None)
    if frame is None:
        return task.get_name()
    return f"{frame.f_code.co_name} ({frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})"


class _IdleSelector(selectors.DefaultSelector):
    """Answers the loop's wait for I/O: at once when something is ready; else, idle, by moving
    the loop's clock over the wait (or raising Stalled when the wait has no end)."""

    def __init__(self, idle_limit: float) -> None:
        super().__init__()
        self.idle_limit = idle_limit
        self.now = 0.0  # the loop's clock, in seconds
        self.working = 0  # jobs on worker threads: their answer comes as a byte on the loop's pipe

    def select(self, timeout: float | None = None):
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if self.working:  # a thread's answer is not idleness: wait for it in real time
            ready = super().select(self.idle_limit if timeout is None else timeout)
        else:
            ready = super().select(self.idle_limit if timeout is None else SETTLE)
        if ready:
            return ready
        if timeout is None:
            waiting = sorted(_where(task) for task in asyncio.all_tasks())
            raise Stalled(f"the event loop had nothing to do for {self.idle_limit:g} s: {len(waiting)} "
                          f"tasks wait and nothing will wake them: {'; '.join(waiting[:8])}")
        self.now += timeout  # idle until the next timer: it is due now
        return ready


class _IdleLoop(asyncio.SelectorEventLoop):
    def __init__(self, idle_limit: float) -> None:
        self._idle = _IdleSelector(idle_limit)
        super().__init__(self._idle)

    def time(self) -> float:
        return self._idle.now

    def run_in_executor(self, executor, func, *args):
        future = super().run_in_executor(executor, func, *args)
        self._idle.working += 1

        def done(_future) -> None:
            self._idle.working -= 1

        future.add_done_callback(done)
        return future


def run(coro: Coroutine, idle_limit: float = IDLE_LIMIT):
    """asyncio.run(coro) on the idle-clocked loop."""
    with asyncio.Runner(loop_factory=lambda: _IdleLoop(idle_limit)) as runner:
        return runner.run(coro)
