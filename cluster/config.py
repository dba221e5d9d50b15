"""The training configuration: typed frozen sections composed into `TrainConfig`.

Values come from, in order: the dataclass defaults (the shipped recipe, what
`webshop-rl train` runs), a YAML file (`cluster/configs/*.yaml`, sections named like
the fields below), then CLI flags and `--set section.key=value`. Every value is
checked against its field's type as it is read; a wrong type, an unknown section or
an unknown key is a `ConfigError` whose one line names the file (or `--set`), the
section and the key.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cluster.data.sources import CATALOG_SOURCES
from cluster.imitation import ILSection
from learner.config import DPOConfig, LearnerConfig, OptimConfig, PPOConfig
from policies.config import check_at_least
from rollout_workers.buffer import BufferConfig
from rollout_workers.worker import WorkerConfig

CONFIG_DIR = Path(__file__).parent / "configs"
ALGOS = ("il", "dpo", "ppo", "rllib-ppo")
WORKER_PLACEMENTS = ("spread", "placement_group")


class ConfigError(ValueError):
    """A config value, key or section that cannot be used; the message is one line."""


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

    source: str = "generated"
    """generated (built from `size` and `seed`, no download), or a WebShop set fetched by
    `webshop-rl data fetch`: webshop-small (1,000 products) or webshop-full (1.18M), read
    from the data directory ($WEBSHOP_RL_DATA, default ~/.cache/webshop-rl/data)."""
    dir: str | None = None
    """A WebShop-format catalog directory (instead of `source`)."""
    size: int = 1000
    """Generated catalog size."""
    seed: int = 0
    """Generated catalog seed."""
    train_goals: int = 20000
    """Fresh generated training goals added to the train split (test and eval goals
    unchanged); 0 = train on the catalog's own train split only."""

    def __post_init__(self):
        if self.source not in CATALOG_SOURCES:
            raise ValueError(f"source must be one of {CATALOG_SOURCES}, got {self.source!r}")
        if self.dir and self.source != "generated":
            raise ValueError(f"set source ({self.source}) or dir ({self.dir}), not both")
        check_at_least("catalog", self, 1, "size")
        check_at_least("catalog", self, 0, "seed", "train_goals")


@dataclass(frozen=True)
class PolicySection:
    """The policy model."""

    preset: str = "cpu"
    """cpu (the encoder's first 2 layers, the upper one and the heads trained; 128-token
    states) or full (every layer trained, 256)."""
    model: str | None = None
    """Encoder name or local path; None = the bundled MiniLM-L6."""
    encoder_layers: int | None = None
    """Keep the encoder's first N layers; None = the preset's (cpu: 2 of MiniLM-L6's 6;
    full: all)."""
    device: str = "cpu"
    """Where the learner and IL train: cpu, cuda, or auto (cuda when there is a GPU)."""
    threads_per_worker: int = 1
    """torch threads in each rollout worker process."""
    worker_gpu_share: float = 0.0
    """GPU each rollout worker asks Ray for: 0 acts on the CPU; 0.125 puts eight workers
    on one GPU, acting there, beside the GPUs the learners take."""
    encoding_cache_gb: float = 8.0
    """Size of the folder of frozen-layer encodings that every process on a machine and
    later runs share (`$WEBSHOP_RL_CACHE/encodings`, policies.encoding_store); 0 = off."""

    def __post_init__(self):
        if not 0.0 <= self.worker_gpu_share <= 1.0:
            raise ValueError(f"worker_gpu_share must be between 0 and 1 (a GPU's share), got {self.worker_gpu_share}")
        check_at_least("policy", self, 1, "threads_per_worker")
        check_at_least("policy", self, 0, "encoding_cache_gb")
        if self.encoder_layers is not None:
            check_at_least("policy", self, 1, "encoder_layers")

    def overrides(self) -> dict:
        """The fields this section sets on the preset's `PolicyConfig`."""
        chosen = {"model": self.model, "encoder_layers": self.encoder_layers}
        return {name: value for name, value in chosen.items() if value is not None}


@dataclass(frozen=True)
class RunConfig:
    """The run as a whole."""

    algo: str = "dpo"
    """il | dpo | ppo | rllib-ppo (RLlib's PPO on the same env and model: cluster/rllib/train.py)."""
    out: str = "runs/latest"
    """Run directory (checkpoints, metrics.jsonl, TensorBoard, buffer)."""
    num_workers: int = 1
    """Rollout worker actors; 0 = everything in this process (debugging)."""
    time_budget_s: float | None = None
    """Stop RL after this many seconds (after IL); None = no clock. A time budget gives a
    slower machine fewer updates, so a weaker result: the default counts updates."""
    updates: int | None = 400
    """Stop after this many learner updates (with a time budget too: whichever comes first)."""
    sync_interval_s: float = 5.0
    """The learner actor publishes weights this often (on Ray; in one process,
    `num_workers: 0`, the worker takes them after every update)."""
    episodes_per_round: int = 8
    """Episodes a worker collects between weight checks; a round is at least
    `worker.num_envs` episodes (`TrainConfig.round_episodes`), since a round starts at most
    one episode per env copy and a smaller one would leave copies idle."""
    eval_interval_s: float = 180.0
    """Evaluation on the eval split this often."""
    eval_episodes: int = 100
    """Goals of the eval split per periodic evaluation; 0 = no periodic evaluation."""
    final_eval_episodes: int = 500
    """Goals of the test split in the final evaluations (IL's and the run's)."""
    checkpoint_interval_s: float = 180.0
    """Commit a checkpoint generation this often (`cluster.run_state`): what `--resume`
    and a rollback after a learner or buffer death return to."""
    keep_best: bool = True
    """Keep the weights of the best periodic evaluation (eval-split success, then score;
    the later one on a tie) in `OUT/best`, evaluate the last weights on the eval split
    too, and hand the best ones to the final test. The last weights are tested as well
    and reported beside them. False: the last weights are the result."""
    worker_placement: str = "spread"
    """spread (SPREAD scheduling) or placement_group (one bundle per rollout worker,
    SPREAD strategy, reserved before the workers start: a multi-node cluster)."""
    chaos_kill_every_updates: int | None = None
    """Fault drill: kill a rollout worker, the buffer actor and the learner actor in turn,
    the k-th once the driver has recorded k times this many learner updates, those rolled
    back included: kills follow work done, not the clock, so a slow machine gets as many.
    A worker is restarted by Ray; the others roll the run back."""
    seed: int = 0
    """Seeds IL, the workers' goal order and sampling, and the learner."""
    address: str | None = None
    """Ray cluster address; None = RAY_ADDRESS or a local instance."""
    resume: str | None = None
    """Continue the run in this directory exactly."""

    def __post_init__(self):
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {ALGOS}, got {self.algo!r}")
        if self.time_budget_s is None and self.updates is None:
            raise ValueError("set time_budget_s or updates (or both): with neither the run never stops")
        check_at_least("run", self, 0, "num_workers", "seed", "eval_episodes", "sync_interval_s",
                       "eval_interval_s", "checkpoint_interval_s")  # an interval of 0: at every chance
        check_at_least("run", self, 1, "episodes_per_round", "final_eval_episodes")
        if self.updates is not None:
            check_at_least("run", self, 1, "updates")
        if self.time_budget_s is not None:
            check_at_least("run", self, 0, "time_budget_s")
        if self.worker_placement not in WORKER_PLACEMENTS:
            raise ValueError(f"worker_placement must be one of {WORKER_PLACEMENTS}, got {self.worker_placement!r}")
        if self.chaos_kill_every_updates is not None and self.chaos_kill_every_updates < 1:
            raise ValueError(f"chaos_kill_every_updates must be at least 1 (or unset), got {self.chaos_kill_every_updates}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything one run reads, one section per component."""

    run: RunConfig = field(default_factory=RunConfig)
    il: ILSection = field(default_factory=ILSection)
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

    def __post_init__(self):
        if self.learner.num_learners > 1 and self.run.num_workers == 0:
            raise ValueError(f"learner.num_learners={self.learner.num_learners} needs Ray: run.num_workers=0 "
                             f"runs one learner in this process (use num_workers >= 1)")
        if self.learner.num_learners > 1 and self.run.algo == "rllib-ppo":
            raise ValueError(f"learner.num_learners={self.learner.num_learners} applies to the dpo and ppo "
                             f"learners; rllib-ppo runs RLlib's own")
        if self.policy.worker_gpu_share > 0 and (self.run.num_workers == 0 or self.run.algo == "rllib-ppo"):
            raise ValueError(f"policy.worker_gpu_share={self.policy.worker_gpu_share} applies to the Ray rollout "
                             f"workers of dpo and ppo: use run.num_workers >= 1 (0 acts in this process)")

    @property
    def round_episodes(self) -> int:
        """Episodes per worker round: `run.episodes_per_round`, at least one per env copy."""
        return max(self.run.episodes_per_round, self.worker.num_envs)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in override.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(path: str | Path | None = None, overrides: dict | None = None,
                source: str = "overrides") -> TrainConfig:
    """TrainConfig from defaults, then the YAML file, then `overrides` (a nested dict,
    named `source` in errors: e.g. "--set")."""
    checked = check_section(TrainConfig, overrides, source, "") if overrides else {}
    layers = []
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections")
        layers.append((str(path), check_section(TrainConfig, raw, str(path), "")))
    if checked:
        layers.append((source, checked))
    values: dict = {}
    for _, layer in layers:
        values = merge(values, layer)
    return _build(TrainConfig, values, layers)


def check_section(cls, values, where: str, path: str) -> dict:
    """`values` for dataclass `cls` with every value checked against its field's type
    (durations read, lists made tuples); `path` is the section's dotted name."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: {path}: expected a mapping of keys, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    out = {}
    for key, value in values.items():
        name = f"{path}.{key}" if path else str(key)
        if key not in names:
            what = f"section '{key}'" if not path else f"key '{name}'"
            raise ConfigError(f"{where}: unknown {what}; expected one of {', '.join(names)}")
        out[key] = _typed(hints[key], value, where, name)
    return out


def _typed(t, value, where: str, name: str):
    """`value` as type `t`, or a ConfigError naming `where` and `name`."""
    if dataclasses.is_dataclass(t):
        return check_section(t, value, where, name)
    args = typing.get_args(t)
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (t,) = [a for a in args if a is not type(None)]
        args = typing.get_args(t)

    def wrong(expected: str):
        return ConfigError(f"{where}: {name}: expected {expected}, got {value!r}")

    if t is dict:
        if not isinstance(value, dict):
            raise wrong("a mapping")
        return dict(value)
    if t is bool:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if t is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        return value
    if t is float:
        if isinstance(value, str) and name.endswith("_s"):
            try:
                return parse_duration(value)
            except ValueError:
                raise wrong("a duration such as 90s, 30m, 1h") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        return float(value)
    if t is str:
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if typing.get_origin(t) is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise wrong("a list of names, e.g. [a, b]")
        return tuple(value)
    raise TypeError(f"config field {name} has a type the loader cannot check: {t}")


def _build(cls, values: dict, layers: list[tuple[str, dict]], path: str = ""):
    """The dataclass `cls` from checked `values`; a section's own check (its
    `__post_init__`) fails as a ConfigError naming the layers that set it."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        name = f"{path}.{key}" if path else key
        if dataclasses.is_dataclass(hints[key]):
            value = _build(hints[key], value, [(w, v.get(key, {})) for w, v in layers], name)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ValueError as e:
        where = " + ".join(w for w, v in layers if v) or "config"
        named = not path or str(e).startswith(f"{path}.")  # the message names the section already
        raise ConfigError(f"{where}: {'' if named else path + ': '}{e}") from None


def parse_set(items: list[str]) -> dict:
    """`--set worker.num_envs=16 dpo.beta=0.2` -> nested dict (YAML-typed values)."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
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
