"""Each call's STATUS handed to the client portal, so the client's account page shows the
compliance state as last reported over the link.

The portal's contract is `provider.web.portal.handsets.record(serial, status, reported_at=...,
source="link")`; this module adapts the link's reading of STATUS to it (the display's two lines,
the recall deadline in core seconds) and calls it. The portal is Django: it is configured from
the environment as `lci-server web` is (LCI_DATABASE_URL, LCI_SECRET_KEY or LCI_DEBUG ...).
Django's ORM is synchronous and keeps one connection per thread, so the reports run on one
worker thread of their own: the event loop never waits on them, and a report that fails is one
line on stderr and a count, never a failed call (the link's own `link_handset` row is written
either way).
"""

from __future__ import annotations

import asyncio
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime


class PortalError(Exception):
    """The portal cannot take reports (not configured, its tables missing): one line."""


def portal_status(status: dict) -> dict:
    """The link's STATUS reading (provider.link.session.Session.status_of) as handsets.record takes it."""
    display = status.get("display") or ""
    return dict(status, display=display.split("|", 1) if isinstance(display, str) else display)


class PortalReports:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="link-portal")
        self._record = None
        self.recorded = 0
        self.failed = 0

    def _setup(self) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "provider.web.settings")
        try:
            import django

            django.setup()
            from provider.web.portal import handsets
            from provider.web.portal.models import HandsetReport

            HandsetReport.objects.exists()  # the table is there (migrated)
        except Exception as exc:  # ImproperlyConfigured, a missing table, an unreachable server
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise PortalError(f"the portal cannot take handset reports: {first} (configure it as "
                              f"for `lci-server web`, and run `lci-server web manage migrate`)") from None
        self._record = handsets.record

    def _write(self, serial: str, status: dict, at: int) -> None:
        from django.db import close_old_connections

        close_old_connections()  # a connection the server dropped is reopened
        assert self._record is not None
        self._record(serial, portal_status(status), reported_at=datetime.fromtimestamp(at, UTC),
                     source="link")

    async def start(self) -> None:
        """Configure Django on the worker thread; raises PortalError."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._setup)

    async def record(self, serial: str, status: dict, at: int) -> bool:
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._write, serial,
                                                             status, at)
        except Exception as exc:
            self.failed += 1
            print(f"lci-server link: the portal's report for {serial} failed: "
                  f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}", file=sys.stderr,
                  flush=True)
            return False
        self.recorded += 1
        return True

    def close(self) -> None:
        self._executor.shutdown(wait=True)
