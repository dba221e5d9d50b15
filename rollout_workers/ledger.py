"""The buffer's ledger: one durable line per acknowledged segment, the buffer's own record
of what it promised to keep.

    buffer/ledger.jsonl    {"kind": "trajectories", "segment": "seg-00000003.parquet",
                            "rows": 8, "ids": ["run.w0.g17.s0", ...]}

A segment is renamed into place and its folder fsynced, then its line is appended and
fsynced, then the append returns: a row is acknowledged exactly when its line is on
disk. On start the buffer trusts the ledger, not the folder: a segment with no line
was written by an append that never answered (a kill between the two) and is set
aside; a line whose segment is gone or damaged is an acknowledged loss and is
reported. A torn last line (a kill while appending it) is cut off. Checks that count
what the buffer acknowledged (the chaos drills) read this file, independently of the
driver.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from policies.atomic import fsync_file

LEDGER_FILE = "ledger.jsonl"

log = logging.getLogger(__name__)


@dataclass
class LedgerEntries:
    """What the ledger says of one kind of row: segment name -> its acknowledged ids."""

    segments: dict[str, list[str]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(len(ids) for ids in self.segments.values())


class Ledger:
    """Append-only, fsynced; `entries(kind)` is what it held when opened plus what was added."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.existed = self.path.is_file()
        self._entries: dict[str, LedgerEntries] = {}
        if self.existed:
            self._read()
        self._file = open(self.path, "a", encoding="utf-8")

    def _read(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a line cut short by a kill: it was never acknowledged
            log.warning("buffer: %s ends in a torn line (%d bytes); cut off", self.path, len(data) - end)
            os.truncate(self.path, end)
            fsync_file(self.path)
        for number, line in enumerate(data[:end].decode("utf-8").splitlines(), start=1):
            try:
                entry = json.loads(line)
                kind, segment, ids = entry["kind"], entry["segment"], entry["ids"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{self.path}: line {number} is not a ledger entry: {e}") from None
            self._entries.setdefault(kind, LedgerEntries()).segments[segment] = list(ids)

    def entries(self, kind: str) -> LedgerEntries:
        return self._entries.setdefault(kind, LedgerEntries())

    def record(self, kind: str, segment: str, ids: list[str]) -> None:
        """Append and fsync one segment's line: from here on its rows are acknowledged."""
        line = json.dumps({"kind": kind, "segment": segment, "rows": len(ids), "ids": ids}, separators=(",", ":"))
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.entries(kind).segments[segment] = list(ids)

    def close(self) -> None:
        self._file.close()


def read_ledger(buffer_dir: str | Path) -> dict[str, list[str]]:
    """Every acknowledged id per kind, in ledger order (for checks and tools; read-only,
    a torn last line ignored)."""
    path = Path(buffer_dir) / LEDGER_FILE
    out: dict[str, list[str]] = {}
    if not path.is_file():
        return out
    data = path.read_bytes()
    for line in data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines():
        entry = json.loads(line)
        out.setdefault(entry["kind"], []).extend(entry["ids"])
    return out
