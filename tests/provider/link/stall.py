"""An event loop for tests whose server and handsets all live on it, that turns a stall into a
failure instead of a hang.

Every peer of such a test is on the loop, so the loop can only be idle — no callback ready, no
timer set, no byte arriving — when every task waits for bytes that no one is going to send: a
stall. Calls may then wait with no time limit (timeout None), however slow the machine, and the
run still ends: when the loop is idle with nothing scheduled, it waits `idle_limit` seconds for
a byte still in flight between its own sockets (or a worker thread's answer) and otherwise
raises Stalled, naming where its tasks wait. Busy time never counts: a loaded machine makes the
loop slower, never idle; the limit is a last-resort bound on idleness, not on the run.
"""

from __future__ import annotations

import asyncio
import os
import selectors
from collections.abc import Coroutine

IDLE_LIMIT = 30.0  # seconds an idle loop waits for a byte in flight before it calls it a stall


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


class _IdleGuard(selectors.DefaultSelector):
    def __init__(self, idle_limit: float) -> None:
        super().__init__()
        self.idle_limit = idle_limit

    def select(self, timeout: float | None = None):
        if timeout is not None:  # a timer or a ready callback: the loop is not idle
            return super().select(timeout)
        ready = super().select(self.idle_limit)
        if ready:
            return ready
        waiting = sorted(_where(task) for task in asyncio.all_tasks())
        raise Stalled(f"the event loop had nothing to do for {self.idle_limit:g} s: "
                      f"{len(waiting)} tasks wait and nothing will wake them: {'; '.join(waiting[:8])}")


def run(coro: Coroutine, idle_limit: float = IDLE_LIMIT):
    """asyncio.run(coro) on a loop that raises Stalled when it is idle with nothing scheduled."""
    with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(_IdleGuard(idle_limit))) as runner:
        return runner.run(coro)
