"""`webshop-rl generate` and `webshop-rl train --algo il`: demonstrations and IL.

Demonstrations are trajectory Parquet files (the project's schema, e.g. written by
`webshop-rl generate --policy expert`) or WebShop's human IL file
(`il_trajs_finalized_images.jsonl`). IL trains the policy with cross-entropy over
each step's candidates and writes a checkpoint; it stops at `num_epochs` or at the
time budget, whichever comes first, and evaluates on a split at the end.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow.parquet as pq
import torch

from envs import WebShopEnv
from envs.agents import ExpertAgent, make_agent
from envs.catalog import Catalog
from policies.checkpoint import CheckpointMetadata, save_checkpoint
from policies.il import ILConfig, ILStep, ILTrainer, read_webshop_il
from policies.policy import Policy, preset_config
from policies.search_queries import search_queries
from rollout_workers.recording import record_episode, write_trajectories
from rollout_workers.schema import TRAJECTORY_SCHEMA, Trajectory


def generate_demos(catalog: Catalog, policy: str, num_episodes: int, split: str = "train", seed: int = 0,
                   max_steps: int = 15, disturb: float = 0.0, expert_pick: str = "goal") -> list[Trajectory]:
    """Record `num_episodes` episodes of a model-free agent on the split's first goals
    (`disturb`: the expert's DART disturbance probability; `expert_pick`: which product
    the expert opens; see `ExpertAgent`)."""
    env = WebShopEnv(catalog=catalog, max_steps=max_steps)
    if (disturb or expert_pick != "goal") and policy != "expert":
        raise ValueError(f"disturb and expert_pick apply to the expert only, not to policy {policy!r}")
    agent = (ExpertAgent(search_queries, disturb=disturb, seed=seed, pick=expert_pick) if policy == "expert"
             else make_agent(policy, seed=seed))
    ids = list(catalog.goal_ids(split))
    source = "expert" if policy == "expert" else "demo"
    return [record_episode(env, agent, ids[i % len(ids)], source=source, seed=seed + i)
            for i in range(num_episodes)]


def trajectory_steps(trajs: list[Trajectory] | None = None, table=None, min_score: float = 0.0) -> list[ILStep]:
    """Every decision of every trajectory scoring at least `min_score`, except the
    steps its `il_mask` marks as disturbances."""
    rows = table.to_pylist() if table is not None else [asdict(t) for t in trajs]
    steps = []
    for r in rows:
        if r["score"] < min_score:
            continue
        mask = r.get("il_mask") or [True] * len(r["chosen"])
        for state, cands, chosen, own in zip(r["states"], r["candidates"], r["chosen"], mask):
            if len(cands) > 1 and own:  # one candidate teaches nothing; a disturbance is not imitated
                steps.append(ILStep(state, tuple(cands), int(chosen)))
    return steps


def load_demo_steps(path: str | Path, min_score: float = 0.0) -> list[ILStep]:
    """IL steps from a trajectory Parquet file/folder or WebShop's IL jsonl."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return list(read_webshop_il(path))
    table = pq.read_table(path, schema=TRAJECTORY_SCHEMA)
    return trajectory_steps(table=table, min_score=min_score)


@dataclass(frozen=True)
class ILRunConfig:
    """One imitation-learning run."""

    out: str = "runs/il"
    """Run directory; the checkpoint goes to `<out>/checkpoint`."""
    demos: str | None = None
    """Demonstration file; None generates `num_demos` expert trajectories."""
    num_demos: int = 1000
    """Expert demonstrations to generate when `demos` is None."""
    disturb: float = 0.0
    """DART: the probability that a generated expert episode is disturbed once (it
    opens a wrong product and recovers; only the recovery is imitated)."""
    expert_pick: str = "first"
    """Which product the generated expert opens: "first" (the first hit that can
    score 1) or "goal"; see `ExpertAgent`."""
    preset: str = "cpu"
    """Policy preset: cpu (top layer + head, 128 tokens) or full."""
    model: str | None = None
    """Encoder name or path; None = the bundled MiniLM-L6."""
    num_epochs: int = 3
    batch_size: int = 16
    lr: float = 5e-4
    time_budget_s: float = 20 * 60
    """Training stops after this many seconds (checked between batches)."""
    lr_schedule: str = "cosine"
    """"cosine": linear warm-up over the first 3% then cosine decay to 10% of `lr`,
    driven by progress = max(batches done / planned, time used / budget), so a run
    cut by its time budget still ends on a small learning rate; "constant"."""
    state_cache: bool = True
    """Cache each state's frozen lower-layer output (the CPU preset freezes 5 of 6
    layers), so epochs after the first run only the trainable top."""
    trainable_top_layers: int | None = -1
    """Override the preset's trainable top layers (-1 = the preset's; None = all)."""
    max_state_tokens: int = 0
    """Override the preset's state cut (0 = the preset's)."""
    select_episodes: int = 0
    """Model selection: after each epoch of the second half, evaluate on this many
    goals of the eval split (never the test split) and keep the best epoch's weights
    (success, then score). 0 = keep the last epoch's."""
    eval_split: str = "test"
    eval_episodes: int = 500
    seed: int = 0
    threads: int = 0
    """torch threads (0 = leave torch's default)."""
    device: str = "cpu"
    """Torch device IL trains on ("cpu", "cuda"); the checkpoint loads anywhere."""


def run_il(cfg: ILRunConfig, catalog: Catalog, log=print) -> dict:
    """Train by imitation, evaluate, save; returns the run's metrics."""
    from cluster.eval.evaluate import evaluate_policy

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if cfg.demos:
        steps = load_demo_steps(cfg.demos)
    else:
        trajs = generate_demos(catalog, "expert", cfg.num_demos, seed=cfg.seed, disturb=cfg.disturb,
                               expert_pick=cfg.expert_pick)
        write_trajectories(trajs, out / "demos.parquet")
        steps = trajectory_steps(trajs, min_score=1.0)
    log(f"IL: {len(steps)} decisions from demonstrations ({time.perf_counter() - t0:.1f}s)")
    overrides: dict = {"device": cfg.device, **({"model": cfg.model} if cfg.model else {})}
    if cfg.trainable_top_layers != -1:
        overrides["trainable_top_layers"] = cfg.trainable_top_layers
    if cfg.max_state_tokens:
        overrides["max_state_tokens"] = cfg.max_state_tokens
    policy = Policy(preset_config(cfg.preset, seed=cfg.seed, **overrides))
    if cfg.state_cache:
        policy.set_state_cache(len({s.state for s in steps}) + 256)
    trainer = ILTrainer(policy, ILConfig(num_epochs=cfg.num_epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                                         seed=cfg.seed))
    selector = _EpochSelector(policy, catalog, cfg, log) if cfg.select_episodes else None
    history = _train(trainer, steps, cfg, log, on_epoch=selector)
    train_s = sum(h["seconds"] for h in history)
    metrics = {"train_seconds": train_s, "decisions": len(steps), "epochs": history}
    if selector is not None:
        metrics["selected_epoch"] = selector.restore_best()
        metrics["selection_seconds"] = selector.seconds
    if cfg.eval_episodes:
        ids = list(catalog.goal_ids(cfg.eval_split))[: cfg.eval_episodes]
        ev = evaluate_policy(policy, catalog, ids)
        metrics["eval"] = ev
        log(f"IL eval on {cfg.eval_split} ({len(ids)} goals): success {100 * ev['success_rate']:.1f}% "
            f"score {ev['score']:.1f} ({ev['seconds']:.0f}s)")
    ckpt = save_checkpoint(policy, out / "checkpoint", CheckpointMetadata(
        version=policy.version, steps=trainer.num_updates, metrics=_jsonable(metrics), train_config=asdict(cfg)))
    metrics["checkpoint"] = str(ckpt)
    (out / "il_metrics.json").write_text(json.dumps(_jsonable(metrics), indent=2))
    return metrics


def lr_scale(progress: float, schedule: str, warmup: float = 0.03, floor: float = 0.1) -> float:
    """Learning-rate multiplier at `progress` in [0, 1] (see `ILRunConfig.lr_schedule`)."""
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {schedule!r}")
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup:
        return progress / warmup
    decay = (progress - warmup) / (1.0 - warmup)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * decay))


class _EpochSelector:
    """Evaluates the policy on the eval split after late epochs; keeps the best weights."""

    def __init__(self, policy: Policy, catalog: Catalog, cfg: ILRunConfig, log):
        self.policy, self.catalog, self.cfg, self.log = policy, catalog, cfg, log
        self.goal_ids = list(catalog.goal_ids("eval"))[: cfg.select_episodes]
        self.best: tuple[float, float] | None = None
        self.best_epoch, self.best_weights, self.seconds = None, None, 0.0

    def __call__(self, epoch: int) -> dict | None:
        if epoch < self.cfg.num_epochs // 2:
            return None
        from cluster.eval.evaluate import evaluate_policy

        t0 = time.perf_counter()
        ev = evaluate_policy(self.policy, self.catalog, self.goal_ids)
        self.seconds += time.perf_counter() - t0
        key = (ev["success_rate"], ev["score"])
        if self.best is None or key > self.best:
            self.best, self.best_epoch = key, epoch
            self.best_weights = self.policy.get_weights(trainable_only=True)  # frozen layers never change
        self.log(f"IL epoch {epoch}: eval split ({len(self.goal_ids)} goals) success "
                 f"{100 * ev['success_rate']:.1f}% score {ev['score']:.1f}")
        return {"eval_success": ev["success_rate"], "eval_score": ev["score"]}

    def restore_best(self) -> int | None:
        if self.best_weights is not None:
            self.policy.set_weights(self.best_weights, version=self.policy.version)
            self.log(f"IL: keeping epoch {self.best_epoch} (best on the eval split)")
        return self.best_epoch


def _train(trainer: ILTrainer, steps: list[ILStep], cfg: ILRunConfig, log, on_epoch=None) -> list[dict]:
    rng = random.Random(cfg.seed)
    order = list(range(len(steps)))
    planned = cfg.num_epochs * math.ceil(len(order) / cfg.batch_size)
    start, history, done = time.perf_counter(), [], 0
    for epoch in range(cfg.num_epochs):
        rng.shuffle(order)
        e0, losses, accs = time.perf_counter(), [], []
        for i in range(0, len(order), cfg.batch_size):
            elapsed = time.perf_counter() - start
            if elapsed > cfg.time_budget_s:
                break
            trainer.set_lr_scale(lr_scale(max(done / planned, elapsed / cfg.time_budget_s), cfg.lr_schedule))
            done += 1
            m = trainer.train_batch([steps[j] for j in order[i:i + cfg.batch_size]])
            losses.append(m["loss"])
            accs.append(m["accuracy"])
        if not losses:
            break
        history.append({"epoch": epoch, "loss": sum(losses) / len(losses), "accuracy": sum(accs) / len(accs),
                        "batches": len(losses), "seconds": time.perf_counter() - e0})
        log(f"IL epoch {epoch}: loss {history[-1]['loss']:.3f} acc {history[-1]['accuracy']:.3f} "
            f"({history[-1]['seconds']:.0f}s, {len(losses)} batches)")
        if on_epoch is not None:
            history[-1].update(on_epoch(epoch) or {})
        if time.perf_counter() - start > cfg.time_budget_s:
            log("IL: time budget reached")
            break
    return history


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x if isinstance(x, (int, float, str, bool)) or x is None else str(x)
