"""The training configuration: typed frozen sections composed into `TrainConfig`.

Values come from, in order: the dataclass defaults, a YAML file
(`cluster/configs/*.yaml`, sections named like the fields below), then CLI flags.
Unknown sections or keys are errors that name the file and the key.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from envs.agents import ExpertAgent
from learner.config import DPOConfig, LearnerConfig, OptimConfig, PPOConfig
from rollout_workers.buffer import BufferConfig
from rollout_workers.worker import WorkerConfig

CONFIG_DIR = Path(__file__).parent / "configs"


def parse_duration(text: str | float | int) -> float:
    """Seconds from "90", "90s", "30m", "1.5h"."""
    if isinstance(text, (int, float)):
        return float(text)
    m = re.fullmatch(r"\s*([\d.]+)\s*([smh]?)\s*", str(text))
    if not m:
        raise ValueError(f"cannot read a duration from {text!r}; use e.g. 90s, 30m, 1h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


@dataclass(frozen=True)
class CatalogConfig:
    """Which catalog to shop in."""

    dir: str | None = None
    """A WebShop-format catalog directory; None = the generated catalog."""
    size: int = 1000
    """Generated catalog size."""
    seed: int = 0
    """Generated catalog seed."""
    train_goals: int = 0
    """Fresh generated training goals added to the train split (test and eval goals
    unchanged); 0 = train on the catalog's own train split only."""


@dataclass(frozen=True)
class PolicySection:
    """The policy model."""

    preset: str = "cpu"
    """cpu (top layer + head trained, 128-token states) or full (every layer, 256)."""
    model: str | None = None
    """Encoder name or local path; None = the bundled MiniLM-L6."""
    device: str = "auto"
    """auto = cuda when the learner has a GPU, else cpu."""
    int8_acting: bool = False
    """Workers act with an int8 copy (faster on CPU, lossy; PPO corrects for it)."""
    threads_per_worker: int = 1
    """torch threads in each rollout worker process."""


@dataclass(frozen=True)
class RunConfig:
    """The run as a whole."""

    algo: str = "dpo"
    """il | dpo | ppo | rllib-ppo (RLlib's PPO on the same env and model: cluster/rllib/train.py)."""
    out: str = "runs/latest"
    """Run directory (checkpoints, metrics.jsonl, TensorBoard, buffer)."""
    num_workers: int = 1
    """Rollout worker actors; 0 = everything in this process (debugging)."""
    time_budget_s: float = 600.0
    """Training stops after this many seconds (after IL)."""
    updates: int | None = None
    """Stop after this many learner updates instead (whichever comes first)."""
    sync_interval_s: float = 5.0
    """The learner publishes weights this often."""
    episodes_per_round: int = 8
    """Episodes a worker collects between weight checks."""
    eval_interval_s: float = 120.0
    """Evaluation on the eval split this often."""
    eval_episodes: int = 100
    """Goals of the eval split per periodic evaluation."""
    final_eval_episodes: int = 500
    """Goals of the test split in the final evaluation (before/after table)."""
    checkpoint_interval_s: float = 180.0
    """Checkpoint this often."""
    keep_best: bool = True
    """Keep the weights of the best periodic evaluation (eval-split success, then score;
    the later one on a tie) in `OUT/best`, evaluate the last weights on the eval split
    too, and hand the best ones to the final test. The last weights are tested as well
    and reported beside them. False: the last weights are the result."""
    il_checkpoint: str | None = None
    """Start from this IL checkpoint; None trains one from generated expert demos."""
    il_demos: int = 1000
    """Expert demonstrations generated when no IL checkpoint or demo file is given."""
    il_demos_path: str | None = None
    """IL demonstrations to train on (trajectory Parquet or WebShop's IL jsonl)."""
    il_epochs: int = 3
    il_time_budget_s: float = 1200.0
    il_disturb: float = 0.0
    """DART: probability that a generated expert demonstration opens one wrong product
    and recovers (only the recovery is imitated; see envs.agents.ExpertAgent)."""
    il_expert_pick: str = "first"
    """Which product generated expert demonstrations open: "first" (the first search
    hit that can score 1, the default: +2.2 points of IL test success over "goal" in 2
    seeds) or "goal" (the goal product); see envs.agents.ExpertAgent."""
    worker_placement: str = "spread"
    """spread (SPREAD scheduling) or placement_group (one bundle per rollout worker,
    SPREAD strategy, reserved before the workers start: a multi-node cluster)."""
    chaos_kill_interval_s: float | None = None
    """Chaos testing: kill a random rollout worker actor this often (Ray restarts it)."""
    seed: int = 0
    address: str | None = None
    """Ray cluster address; None = RAY_ADDRESS or a local instance."""
    resume: str | None = None
    """Continue the run in this directory exactly."""

    def __post_init__(self):
        if self.il_expert_pick not in ExpertAgent.PICKS:
            allowed = " or ".join(repr(p) for p in ExpertAgent.PICKS)
            raise ValueError(f"run.il_expert_pick must be {allowed}, got {self.il_expert_pick!r}")


@dataclass(frozen=True)
class TrainConfig:
    run: RunConfig = field(default_factory=RunConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    policy: PolicySection = field(default_factory=PolicySection)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    """Learner settings shared by DPO and PPO (forward-pass and cache sizes)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """AdamW and the LR schedule of the learner."""
    dpo: DPOConfig = field(default_factory=DPOConfig)
    """DPO's settings (its own lr and staleness bound); used by --algo dpo."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO's settings (its own lr and staleness bound); used by --algo ppo and rllib-ppo."""
    buffer: BufferConfig = field(default_factory=BufferConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _build(cls, values: dict, where: str):
    if cls is dict:
        return dict(values)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(names)}")
    kwargs = {}
    for k, v in values.items():
        t = hints[k]
        if dataclasses.is_dataclass(t) or t is dict:
            if not isinstance(v, dict):
                raise ValueError(f"{where}.{k}: expected a mapping, got {type(v).__name__}")
            kwargs[k] = _build(t, v, f"{where}.{k}")
        elif k.endswith("_s") and isinstance(v, str):
            kwargs[k] = parse_duration(v)
        elif isinstance(v, list):
            kwargs[k] = tuple(v)
        else:
            kwargs[k] = v
    return cls(**kwargs)


def merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in override.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> TrainConfig:
    """TrainConfig from defaults, then the YAML file, then `overrides` (nested dict)."""
    values: dict = {}
    where = "config"
    if path is not None:
        where = str(path)
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping of sections")
        values = raw
    values = merge(values, overrides or {})
    return _build(TrainConfig, values, where)


def parse_set(items: list[str]) -> dict:
    """`--set worker.num_envs=16 learner.beta=0.2` -> nested dict (YAML-typed values)."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects section.key=value, got {item!r}")
        key, value = item.split("=", 1)
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = _scalar(yaml.safe_load(value))
    return out


def _scalar(value):
    """YAML 1.1 reads "5e-5" (no dot) as a string; a number is meant."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
