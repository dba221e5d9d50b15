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
from pathlib import Path

from policies.atomic import cut_torn_line, whole_lines

LEDGER_FILE = "ledger.jsonl"

log = logging.getLogger(__name__)


class Ledger:
    """Append-only, fsynced; `segments(kind)` (segment name -> its acknowledged ids) is what
    it held when opened plus what was added since."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.existed = self.path.is_file()
        self._segments: dict[str, dict[str, list[str]]] = {}
        if self.existed:
            self._read()
        self._file = open(self.path, "a", encoding="utf-8")

    def _read(self) -> None:
        torn = cut_torn_line(self.path)  # a line cut short by a kill: it was never acknowledged
        if torn:
            log.warning("buffer: %s ends in a torn line (%d bytes); cut off", self.path, torn)
        for number, line in enumerate(whole_lines(self.path), start=1):
            try:
                entry = json.loads(line)
                kind, segment, ids = entry["kind"], entry["segment"], entry["ids"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{self.path}: line {number} is not a ledger entry: {e}") from None
            self.segments(kind)[segment] = list(ids)

    def segments(self, kind: str) -> dict[str, list[str]]:
        return self._segments.setdefault(kind, {})

    def record(self, kind: str, segment: str, ids: list[str]) -> None:
        """Append and fsync one segment's line: from here on its rows are acknowledged."""
        line = json.dumps({"kind": kind, "segment": segment, "rows": len(ids), "ids": ids}, separators=(",", ":"))
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.segments(kind)[segment] = list(ids)

    def close(self) -> None:
        self._file.close()


def read_ledger(buffer_dir: str | Path) -> dict[str, list[str]]:
    """Every acknowledged id per kind, in ledger order (for checks and tools; read-only,
    a torn last line ignored)."""
    out: dict[str, list[str]] = {}
    for line in whole_lines(Path(buffer_dir) / LEDGER_FILE):
        entry = json.loads(line)
        out.setdefault(entry["kind"], []).extend(entry["ids"])
    return out
