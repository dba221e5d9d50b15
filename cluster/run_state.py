"""A run's checkpoint generations: everything `--resume` needs, committed as one.

    OUT/run_state.json                  {"format": 2, "generation": G}   <- the commit
    OUT/generations/G/run.json          counters, worker states (goal cursors, RNGs),
                                        the buffer's high-water mark and RNG, the best
                                        evaluation
    OUT/generations/G/policy/           the policy checkpoint (generation G)
    OUT/generations/G/learner/          the learner state (generation G)
    OUT/generations/G/best/             OUT/best as it was (its own generation), if any
    OUT/publishes.jsonl                 every weights publish on Ray (`PublishLog`)

A generation is written into `OUT/generations/.G.tmp`, fsynced, renamed to G, and only
then committed by replacing `run_state.json` atomically; older generations are removed
after the commit. A kill at any moment leaves `run_state.json` naming a whole
generation: the previous one or the new one. Loading checks that every part carries the
generation `run.json` expects and names the file that does not. `OUT/checkpoint` (the
policy users serve) is refreshed from the committed generation after each commit.
`result_checkpoint` says which of a run's checkpoints is its result.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from learner.state import state_generation
from policies.atomic import cut_torn_line, fsync_dir, fsync_tree, staged_directory, whole_lines, write_file_atomic
from policies.checkpoint import CheckpointError, check_generation

FORMAT = 2  # 1: run_state.json held counters and worker cursors only (no generations)
RUN_STATE = "run_state.json"
GENERATIONS = "generations"
RUN_FILE = "run.json"
PUBLISH_LOG = "publishes.jsonl"
RUN_ID_FILE = "run_id"  # OUT/run_id: names the run's episodes (rollout_workers.worker.trajectory_id)


class RunStateError(ValueError):
    """A run directory whose committed state cannot be resumed; names the file."""


@dataclass(frozen=True)
class Committed:
    """The committed generation of a run, checked whole."""

    generation: str
    directory: Path
    record: dict[str, Any]
    """run.json: counters, workers, buffer, best."""

    @property
    def policy_dir(self) -> Path:
        return self.directory / "policy"

    @property
    def learner_dir(self) -> Path:
        return self.directory / "learner"

    @property
    def best_dir(self) -> Path:
        return self.directory / "best"


def _sequence(generation: str) -> int:
    return int(generation.split("-", 1)[0])


def commit_generation(out: Path, write_parts: Callable[[Path, str], dict[str, Any]]) -> Committed:
    """Write and commit a new generation of the run in `out`; returns it (as `load_committed`
    would, without reading back what was just written).

    `write_parts(directory, generation)` writes policy/, learner/ and best/ into the
    staging `directory`, each carrying `generation` (best/ its own), and returns the
    JSON-able record for run.json.
    """
    gens = out / GENERATIONS
    gens.mkdir(parents=True, exist_ok=True)
    last = read_pointer(out)
    generation = f"{(_sequence(last) + 1) if last else 1:06d}-{uuid.uuid4().hex[:8]}"
    staging = gens / f".{generation}.tmp"
    staging.mkdir()
    try:
        record = {"format": FORMAT, "generation": generation, **write_parts(staging, generation)}
        (staging / RUN_FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        fsync_tree(staging)
        os.rename(staging, gens / generation)
        fsync_dir(gens)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_file_atomic(out / RUN_STATE, json.dumps({"format": FORMAT, "generation": generation}) + "\n")
    for other in gens.iterdir():  # earlier generations, and debris of saves a kill cut short
        if other.name != generation:
            shutil.rmtree(other) if other.is_dir() else other.unlink()
    fsync_dir(gens)
    return Committed(generation, gens / generation, json.loads(json.dumps(record)))


def read_run_json(path: Path) -> Any:
    """A JSON file of a run directory; a torn or foreign one raises RunStateError naming it."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunStateError(f"{path}: not valid JSON: {e}") from None


def read_pointer(out: Path) -> str | None:
    """The committed generation id, or None when nothing was committed yet."""
    path = out / RUN_STATE
    if not path.is_file():
        return None
    meta = read_run_json(path)
    if meta.get("format") != FORMAT:
        raise RunStateError(f"{path}: written by an earlier webshop-rl (format {meta.get('format')!r}, no "
                            f"checkpoint generations); it cannot be resumed exactly: start a new run")
    return str(meta["generation"])


def load_committed(out: Path) -> Committed | None:
    """The committed generation of the run in `out`, every part checked; None if none.
    A live run may commit a newer generation and prune this one while it is read: then
    the newer one is read instead.

    Raises:
        RunStateError: a part is missing or of another generation (the file is named).
    """
    while True:
        generation = read_pointer(out)
        try:
            return _load_generation(out, generation)
        except (RunStateError, OSError):
            if read_pointer(out) == generation:  # not a run moving on: the generation is damaged
                raise


def _load_generation(out: Path, generation: str | None) -> Committed | None:
    if generation is None:
        return None
    directory = out / GENERATIONS / generation
    run_file = directory / RUN_FILE
    if not run_file.is_file():
        raise RunStateError(f"{run_file}: missing ({out / RUN_STATE} commits generation {generation})")
    record = json.loads(run_file.read_text())
    if record.get("generation") != generation:
        raise RunStateError(f"{run_file}: generation {record.get('generation')!r}, but {out / RUN_STATE} "
                            f"commits {generation!r}")
    committed = Committed(generation, directory, record)
    try:
        parts = {committed.policy_dir / "metadata.json": check_generation(committed.policy_dir),
                 committed.learner_dir / "learner.json": state_generation(committed.learner_dir)}
        if record.get("best") is not None:
            parts[committed.best_dir / "metadata.json"] = check_generation(committed.best_dir)
    except (CheckpointError, ValueError) as e:
        raise RunStateError(f"generation {generation} is damaged: {e}") from None
    expected = {committed.best_dir / "metadata.json": (record.get("best") or {}).get("generation")}
    for file, found in parts.items():
        want = expected.get(file, generation)
        if found != want:
            raise RunStateError(f"{file}: generation {found!r}, but {run_file} expects {want!r}")
    return committed


def link_directory(source: Path, target: Path) -> None:
    """Replace `target` with a copy of `source` made of hard links (files are never
    rewritten in place, so sharing them is safe); a copy where links are refused."""
    with staged_directory(target) as tmp:
        for f in source.iterdir():
            try:
                os.link(f, tmp / f.name)
            except OSError:
                shutil.copy2(f, tmp / f.name)


def result_checkpoint(path: str | Path) -> Path:
    """The checkpoint a command given `path` loads: for a run directory its result,
    `best/` when the run's summary.json says the best evaluation's weights were chosen
    (`run.keep_best`), else `checkpoint/` (the last weights; also while the run is in
    progress), else `il/checkpoint/` (an `--algo il` run, or one whose RL has not
    committed yet); any other path is taken as a checkpoint directory itself.

    Raises:
        RunStateError: the run's summary.json is not valid JSON.
    """
    path = Path(path)
    summary = path / "summary.json"
    if (path / "best" / "model.safetensors").exists() and summary.exists() and "selected" in read_run_json(summary):
        return path / "best"
    for result in (path / "checkpoint", path / "il" / "checkpoint"):
        if (result / "model.safetensors").exists():
            return result
    return path


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


class PublishLog:
    """`OUT/publishes.jsonl`: one fsynced line per weights publish (version, learner
    updates), written before the workers can see the version. The highest version in it
    is where a restored learner continues (`Learner.continue_versions_after`); checks
    read it to see that the published versions never go back."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        cut_torn_line(self.path)  # a line a kill cut short: never a publish

    def versions(self) -> list[int]:
        """Every logged version in publish order (a torn last line is not a publish)."""
        return [json.loads(line)["version"] for line in whole_lines(self.path)]

    def highest(self) -> int:
        return max(self.versions(), default=-1)

    def record(self, version: int, updates: int) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"version": version, "updates": updates}) + "\n")
            f.flush()
            os.fsync(f.fileno())
