"""A real headless Chromium for page tests: the system's browser (Debian `chromium`) driven by
Playwright. No browser ships on PyPI and browser downloads are blocked, so a missing browser
fails the test with the one command that installs it — never a silent skip."""

from __future__ import annotations

import contextlib
import os
import shutil

import pytest

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
INSTALL = "sudo apt-get install -y chromium chromium-driver"


def chromium_path() -> str:
    path = os.environ.get("LCI_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(f"no Chromium on this machine: run `{INSTALL}` (or set LCI_CHROMIUM)")
    return path


@contextlib.contextmanager
def chromium_page(width: int = 1200, height: int = 900):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()
