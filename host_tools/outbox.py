"""The laptop's record of tokens it minted and sent without knowing whether they were applied.

A token lci-tool mints for a command (an unlock window, a clock setting) is written here
before it goes out and removed once the handset gave a definite answer. If the answer was
lost, the entry stays: running the same command again presents the same token first — the
handset answers "already applied" if it did the work — instead of minting a second token
that would do it twice. One JSON file per handset serial, {command: token hex}, replaced
atomically (write a temporary file, rename).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

FOLDER = "pending"


class Outbox:
    def __init__(self, folder: Path):
        self.folder = folder

    def _file(self, serial: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in serial)
        return self.folder / f"{safe}.json"

    def _load(self, serial: str) -> dict:
        try:
            data = json.loads(self._file(serial).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, serial: str, entries: dict) -> None:
        path = self._file(serial)
        if not entries:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries, sort_keys=True))
        os.replace(tmp, path)

    def get(self, serial: str, command: str) -> bytes | None:
        text = self._load(serial).get(command)
        try:
            return bytes.fromhex(text) if isinstance(text, str) else None
        except ValueError:
            return None

    def put(self, serial: str, command: str, token: bytes) -> None:
        entries = self._load(serial)
        entries[command] = token.hex()
        self._save(serial, entries)

    def drop(self, serial: str, command: str) -> None:
        entries = self._load(serial)
        if entries.pop(command, None) is not None:
            self._save(serial, entries)
