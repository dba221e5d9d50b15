"""`webshop-rl generate` and the IL phase of `webshop-rl train`: demonstrations and IL.

Demonstrations are trajectory Parquet files (the project's schema, e.g. written by
`webshop-rl generate --policy expert`) or WebShop's human IL file
(`il_trajs_finalized_images.jsonl`), replayed in the run's catalog into the same state
and candidate texts the rollout workers build (`rollout_workers.human_demos`); without
one, IL generates expert demonstrations on the train split. IL trains the policy with
cross-entropy over each step's candidates (`ILSection`), with a cosine learning rate by
batches done, stops at its epochs or its time budget, evaluates on the test split and
writes a checkpoint.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from transformers import get_scheduler

from cluster.progress import Progress
from envs import WebShopEnv
from envs.agents import ExpertAgent, make_agent
from envs.catalog import Catalog
from policies.checkpoint import CheckpointMetadata, save_checkpoint
from policies.config import check_at_least, check_positive
from policies.encoding_store import EncodingStore
from policies.il import ILConfig, ILStep, ILTrainer
from policies.policy import Policy, PolicyConfig
from policies.search_queries import search_queries
from rollout_workers.recording import read_trajectory_table, record_episode, write_trajectories
from rollout_workers.schema import Trajectory

LR_SCHEDULE = "cosine_with_min_lr"
"""`transformers.get_scheduler` name of IL's learning-rate schedule."""
WARMUP_SHARE = 0.03
"""Share of the planned batches over which the learning rate warms up linearly."""
LR_FLOOR = 0.1
"""The cosine decays to this share of `ILSection.lr` at the last planned batch."""
ESTIMATE_AFTER_S = 60.0
"""IL estimates its length after this much training."""


@dataclass(frozen=True)
class ILSection:
    """Imitation learning, the first phase of a run (the `il:` section of the config)."""

    checkpoint: str | None = None
    """Start RL from this IL checkpoint instead of training one."""
    demos: str | None = None
    """Demonstrations to train on (trajectory Parquet, or WebShop's IL jsonl: its
    train-split trajectories replayed in the run's catalog); None generates `num_demos`
    expert demonstrations on the train split."""
    num_demos: int = 3000
    """Expert demonstrations generated when `demos` is None."""
    epochs: int = 3
    """Passes over the demonstrations."""
    batch_size: int = 16
    """Decisions per optimizer step."""
    lr: float = 5e-4
    """Peak AdamW learning rate (warm-up, then cosine decay to `LR_FLOOR` of it)."""
    time_budget_s: float | None = None
    """Stop training after this many seconds (checked between batches); None = train the
    planned epochs. A cap makes a slower machine's IL weaker: a line says what it cut."""

    def __post_init__(self):
        check_at_least("il", self, 1, "num_demos", "epochs", "batch_size")
        check_positive("il", self, "lr")
        if self.time_budget_s is not None:
            check_at_least("il", self, 0, "time_budget_s")


def generate_demos(catalog: Catalog, policy: str, num_episodes: int, split: str = "train", seed: int = 0,
                   max_steps: int = 15, on_episode: Callable[[], None] | None = None) -> list[Trajectory]:
    """Record `num_episodes` episodes of a model-free agent on the split's first goals.

    The expert opens the first search hit that can score 1 (`ExpertAgent` pick
    "first"): a rule imitation carries over to unseen goals. `on_episode` is called
    after each episode (progress).
    """
    env = WebShopEnv(catalog=catalog, max_steps=max_steps)
    agent = ExpertAgent(search_queries, pick="first") if policy == "expert" else make_agent(policy, seed=seed)
    ids = list(catalog.goal_ids(split))
    source = "expert" if policy == "expert" else "demo"
    out = []
    for i in range(num_episodes):
        out.append(record_episode(env, agent, ids[i % len(ids)], source=source, seed=seed + i))
        if on_episode is not None:
            on_episode()
    return out


def trajectory_steps(trajs: list[Trajectory] | None = None, table=None, min_score: float = 0.0) -> list[ILStep]:
    """Every decision of every trajectory scoring at least `min_score`, except the
    steps its `il_mask` marks as not the demonstrator's own choice."""
    rows = table.to_pylist() if table is not None else [asdict(t) for t in trajs]
    steps = []
    for r in rows:
        if r["score"] < min_score:
            continue
        mask = r.get("il_mask") or [True] * len(r["chosen"])
        for state, cands, chosen, own in zip(r["states"], r["candidates"], r["chosen"], mask):
            if len(cands) > 1 and own:  # one candidate teaches nothing
                steps.append(ILStep(state, tuple(cands), int(chosen)))
    return steps


def load_demo_steps(path: str | Path, catalog: Catalog | None = None, min_score: float = 0.0,
                    log=print) -> list[ILStep]:
    """IL steps from a trajectory Parquet file/folder, or from WebShop's IL jsonl replayed
    in `catalog` (its train split; `rollout_workers.human_demos`, whose report goes to `log`)."""
    if Path(path).suffix == ".jsonl":
        return trajectory_steps(demo_trajectories(path, catalog, log), min_score=min_score)
    return trajectory_steps(table=read_trajectory_table(path), min_score=min_score)


def demo_trajectories(path: str | Path, catalog: Catalog | None, log=print) -> list[Trajectory]:
    """WebShop's human IL file as trajectories in the policy's representation (train-split goals)."""
    from rollout_workers.human_demos import replay_human_demos

    if catalog is None:
        raise ValueError(f"{path}: WebShop's human demonstrations are replayed in a catalog; none was given")
    trajs, report = replay_human_demos(path, catalog)
    log(report.describe())
    return trajs


def run_il(il: ILSection, catalog: Catalog, policy_config: PolicyConfig, out: str | Path, seed: int = 0,
           eval_episodes: int = 500, log=print, encodings: EncodingStore | None = None,
           on_estimate: Callable[[float, float], None] | None = None) -> dict:
    """Train by imitation, evaluate on the test split's first `eval_episodes` goals
    (0: none), save `out/checkpoint`; returns the run's metrics. `encodings`: a folder
    of frozen-layer encodings to share (policies.encoding_store); `on_estimate`: see `train`."""
    from cluster.eval.evaluate import evaluate_policy

    torch.manual_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    steps = demo_steps(il, catalog, out, seed)
    log(f"IL: {len(steps)} decisions from demonstrations ({time.perf_counter() - t0:.1f}s)")
    policy = Policy(policy_config)
    # The frozen lower layers run once per state: kept in memory, or read back from the
    # folder of shared encodings (an fp32 MiniLM state is ~200 KB; 13.5k demo states ~2.7 GB).
    policy.set_state_cache(len({s.state for s in steps}) + 256 if encodings is None else 2048)
    policy.use_encoding_store(encodings)
    prefill_s = prefill_encodings(policy, steps)
    trainer = ILTrainer(policy, ILConfig(num_epochs=il.epochs, batch_size=il.batch_size, lr=il.lr, seed=seed))
    history = train(trainer, steps, il, seed, log, on_estimate, prefill_s)
    metrics = {"train_seconds": sum(h["seconds"] for h in history), "prefill_seconds": prefill_s,
               "decisions": len(steps), "epochs": history}
    if eval_episodes:
        ids = list(catalog.goal_ids("test"))[:eval_episodes]
        ev = evaluate_policy(policy, catalog, ids, progress="IL test")
        metrics["eval"] = ev
        log(f"IL eval on test ({len(ids)} goals): success {100 * ev['success_rate']:.1f}% "
            f"score {ev['score']:.1f} ({ev['seconds']:.0f}s)")
    ckpt = save_checkpoint(policy, out / "checkpoint", CheckpointMetadata(
        version=policy.version, steps=trainer.num_updates, metrics=_jsonable(metrics),
        train_config={**asdict(il), "seed": seed}))
    metrics["checkpoint"] = str(ckpt)
    (out / "il_metrics.json").write_text(json.dumps(_jsonable(metrics), indent=2))
    return metrics


def prefill_encodings(policy: Policy, steps: list[ILStep]) -> float:
    """Encode every demo state's and candidate's frozen parts before the first epoch, in
    large stacks (`Policy.prefill_frozen`: the same bits the batches would compute; epoch 0
    605 s -> 285 + 275 s on a 2-core CPU, AVX2 kernels, fp32); returns the seconds it took."""
    t0, bar = time.perf_counter(), None

    def advance(n: int, total: int) -> None:
        nonlocal bar
        bar = bar or Progress(total, "IL encodings", unit="text")
        bar.advance(n)

    try:
        policy.prefill_frozen([s.state for s in steps], [a for s in steps for a in s.candidates], on_chunk=advance)
    finally:
        if bar is not None:
            bar.close()
    return time.perf_counter() - t0


def demo_steps(il: ILSection, catalog: Catalog, out: Path, seed: int) -> list[ILStep]:
    """The decisions to imitate: from `il.demos` (WebShop's human file is replayed in
    `catalog` and written to `out/demos.parquet`), or from freshly generated expert
    demonstrations (written there too; only successful ones are kept)."""
    if il.demos and Path(il.demos).suffix == ".jsonl":  # the replayed trajectories are kept with the run
        trajs = demo_trajectories(il.demos, catalog)
        write_trajectories(trajs, out / "demos.parquet")
        return trajectory_steps(trajs)
    if il.demos:
        return load_demo_steps(il.demos)
    with Progress(il.num_demos, "IL demos", unit="demo") as bar:
        trajs = generate_demos(catalog, "expert", il.num_demos, seed=seed, on_episode=bar.advance)
    write_trajectories(trajs, out / "demos.parquet")
    return trajectory_steps(trajs, min_score=1.0)


def lr_scheduler(optimizer: torch.optim.Optimizer, num_batches: int) -> torch.optim.lr_scheduler.LambdaLR:
    """IL's schedule over `num_batches` optimizer steps: linear warm-up over the first
    `WARMUP_SHARE` of them, then cosine decay to `LR_FLOOR` of the peak."""
    return get_scheduler(LR_SCHEDULE, optimizer, num_warmup_steps=math.ceil(WARMUP_SHARE * num_batches),
                         num_training_steps=num_batches, scheduler_specific_kwargs={"min_lr_rate": LR_FLOOR})


def train(trainer: ILTrainer, steps: list[ILStep], il: ILSection, seed: int, log,
          on_estimate: Callable[[float, float], None] | None = None, prefill_s: float = 0.0) -> list[dict]:
    """Shuffled epochs of `il.batch_size` decisions until `il.epochs` (or the time budget,
    if one is set: a line then says what it cut); returns one record per epoch (mean loss
    and accuracy, batches, seconds). After `ESTIMATE_AFTER_S` of training,
    `on_estimate(seconds, seconds_per_batch)` gets the estimated length of the whole of
    IL (`prefill_s` spent before training included) and what a batch costs."""
    rng = random.Random(seed)
    order = list(range(len(steps)))
    per_epoch = math.ceil(len(order) / il.batch_size)
    planned = il.epochs * per_epoch
    scheduler = lr_scheduler(trainer.optimizer, planned)
    start, history, done, estimated = time.perf_counter(), [], 0, on_estimate is None
    with Progress(planned, "IL training", unit="batch") as bar:
        for epoch in range(il.epochs):
            rng.shuffle(order)
            e0, losses, accs = time.perf_counter(), [], []
            for i in range(0, len(order), il.batch_size):
                if il.time_budget_s is not None and time.perf_counter() - start > il.time_budget_s:
                    break
                m = trainer.train_batch([steps[j] for j in order[i:i + il.batch_size]])
                scheduler.step()
                losses.append(m["loss"])
                accs.append(m["accuracy"])
                done += 1
                bar.advance(1, epoch=f"{epoch + 1}/{il.epochs}", loss=m["loss"])
                if not estimated and time.perf_counter() - start >= ESTIMATE_AFTER_S:
                    estimated = True
                    elapsed = time.perf_counter() - start
                    on_estimate(prefill_s + il_seconds_estimate(elapsed, done, per_epoch, il.epochs), elapsed / done)
            if not losses:
                break
            history.append({"epoch": epoch, "loss": sum(losses) / len(losses), "accuracy": sum(accs) / len(accs),
                            "batches": len(losses), "seconds": time.perf_counter() - e0})
            log(f"IL epoch {epoch}: loss {history[-1]['loss']:.3f} acc {history[-1]['accuracy']:.3f} "
                f"({history[-1]['seconds']:.0f}s, {len(losses)} batches)")
    if done < planned:
        log(f"IL: il.time_budget_s={il.time_budget_s:g} stopped training after {done} of {planned} batches "
            f"({done / per_epoch:.1f} of {il.epochs} epochs): this IL result is weaker than the planned one")
    return history


def il_seconds_estimate(elapsed: float, done: int, per_epoch: int, epochs: int) -> float:
    """IL training's whole length from `done` batches in `elapsed` seconds: the frozen
    encodings were computed beforehand (`prefill_encodings`), so every epoch costs alike."""
    return elapsed / max(done, 1) * per_epoch * epochs


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x if isinstance(x, (int, float, str, bool)) or x is None else str(x)
