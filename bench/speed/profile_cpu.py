"""Where the policy's time goes on a CPU: an IL batch, an acting call, a DPO update.

    python bench/speed/profile_cpu.py [--demos 300] [--batches 12] [--precision fp32]
    ATEN_CPU_CAPABILITY=avx2 python bench/speed/profile_cpu.py     # the AVX2 path on a newer CPU

Each path runs without and with a warm folder of shared encodings (`policies.encoding_store`,
filled by another policy first, as a rollout worker or an earlier run leaves it), and
prints the ratio. Data are real: expert demonstrations on the generated catalog (their pages, candidates
and choices). Each path runs on a fresh CPU-preset policy, so its caches start cold as
at the start of a run:
  IL batch     `ILTrainer.train_batch` on 16 decisions, first epoch (cold) and again (warm);
  acting       `Policy.act` on 8 pages from 8 different episodes, 1 call per batch;
  DPO update   `Learner.train` on 8 decision pairs (chosen: the expert's step, rejected:
               another candidate there) and 8 anchor states, the shipped DPO settings.
Each call's time is split by timers wrapped around the functions that do the work:
tokenize, the frozen lower state layers, the frozen action encoder, the trainable
layers forward, the bi-attention and value heads forward, backward, optimizer step; the
rest (batch building, caches, padding, Python) is "other". Prints per path the median
seconds per call [min-max] and each part's share of the summed time.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
from common import Timers  # noqa: E402

import policies.encoder as enc  # noqa: E402
import policies.model as model_module  # noqa: E402
import policies.policy as policy_module  # noqa: E402
from cluster.imitation import generate_demos, trajectory_steps  # noqa: E402
from envs.generate import load_catalog  # noqa: E402
from learner.batches import DPOBatch  # noqa: E402
from learner.config import DPOConfig  # noqa: E402
from learner.learner import Learner  # noqa: E402
from policies.encoding_store import EncodingStore  # noqa: E402
from policies.il import ILConfig, ILStep, ILTrainer  # noqa: E402
from policies.policy import Policy, preset_config  # noqa: E402
from rollout_workers.schema import Trajectory  # noqa: E402

PARTS = ("tokenize", "state encoder, all layers", "frozen state layers", "frozen action encoder", "trainable layers fwd", "heads fwd",
         "backward", "optimizer", "other")


def install(timers: Timers) -> None:
    """Time the functions that do the work, wherever the policy calls them from."""
    def layers_part(module, ids, mask, start, end):
        if module is not None and getattr(module, "_frozen_action", False):
            return "frozen action encoder"
        if torch.is_inference_mode_enabled() or not torch.is_grad_enabled():
            if start == 0:
                return "state encoder, all layers" if end == enc.num_layers(module) else "frozen state layers"
            return "trainable layers fwd"
        return "trainable layers fwd"

    timers.wrap(policy_module.Policy, "_tokenize", lambda *a, **k: "tokenize")
    timers.wrap(enc, "run_layers", layers_part)
    timers.wrap(model_module, "run_layers", layers_part)
    timers.wrap(model_module.BiAttentionHead, "forward", lambda *a, **k: "heads fwd")
    timers.wrap(torch.Tensor, "backward", lambda *a, **k: "backward")
    timers.wrap(torch.optim.AdamW, "step", lambda *a, **k: "optimizer")


def fresh_policy(precision: str, store: EncodingStore | None = None) -> Policy:
    return profiled(Policy(preset_config("cpu", precision=precision)), store)


def profiled(policy: Policy, store: EncodingStore | None) -> Policy:
    """`policy` reading and writing `store`, its frozen action encoder marked for `layers_part`."""
    policy.use_encoding_store(store)
    if policy.model.action_encoder is not None:
        policy.model.action_encoder._frozen_action = True
    return policy


def measure(timers: Timers, calls: list, fn) -> tuple[list[float], dict[str, float]]:
    """Run `fn(call)` for each call; seconds per call and seconds per part (summed)."""
    timers.seconds.clear()
    times = []
    for call in calls:
        start = time.perf_counter()
        fn(call)
        times.append(time.perf_counter() - start)
    parts = dict(timers.seconds)
    parts["other"] = sum(times) - sum(parts.values())
    return times, parts


def report(label: str, times: list[float], parts: dict[str, float], unit: str, per_call: int) -> None:
    med = statistics.median(times)
    total = sum(times)
    print(f"\n{label}: {med:.3f} s per call [{min(times):.3f}-{max(times):.3f}], "
          f"{per_call / med:.1f} {unit}/s (median of {len(times)})")
    for name in PARTS:
        if parts.get(name, 0.0) > 0:
            print(f"  {name:<24} {100 * parts[name] / total:5.1f}%   {parts[name] / len(times):.3f} s/call")


def dpo_pairs(trajs: list[Trajectory], rng: random.Random) -> list[tuple[Trajectory, Trajectory]]:
    """Decision pairs from expert episodes: the rejected side takes another candidate at one step."""
    pairs = []
    for t in trajs:
        steps = [i for i in range(t.num_steps) if len(t.candidates[i]) > 1]
        if not steps:
            continue
        i = rng.choice(steps)
        other = rng.choice([k for k in range(len(t.candidates[i])) if k != t.chosen[i]])
        cut = {name: getattr(t, name)[:i + 1] for name in ("states", "candidates", "logp", "rewards")}
        rejected = dataclasses.replace(t, **cut, chosen=t.chosen[:i] + [other], values=None, ref_logp=None,
                                       il_mask=None, score=0.0, traj_id=t.traj_id + ".rej")
        pairs.append((t, rejected))
    return pairs


def prefill(store: EncodingStore, precision: str, pages: list[tuple[str, list[str]]]) -> None:
    """Encode `pages` through `store` with another policy: what a worker or an earlier run leaves."""
    policy = fresh_policy(precision, store)
    for i in range(0, len(pages), 8):
        policy.act([s for s, _ in pages[i:i + 8]], [c for _, c in pages[i:i + 8]])


def il_path(timers, steps, args, store) -> list:
    policy = fresh_policy(args.precision, store)
    policy.set_state_cache(len(steps) + 256)
    trainer = ILTrainer(policy, ILConfig())
    batches = [steps[i:i + 16] for i in range(0, 16 * (args.batches + 2), 16)]
    trainer.train_batch(batches[0])  # allocator and thread pool warm-up
    first = measure(timers, batches[2:], trainer.train_batch)
    return [("IL batch, first epoch (16 decisions)", *first, "decisions", 16),
            ("IL batch, later epochs (16 decisions)", *measure(timers, batches[2:], trainer.train_batch),
             "decisions", 16)]


def acting_path(timers, pages, args, store) -> list:
    policy = fresh_policy(args.precision, store)
    calls = [pages[i:i + 8] for i in range(0, 8 * (args.batches + 1), 8)]
    policy.act([s for s, _ in calls[0]], [c for _, c in calls[0]])
    times, parts = measure(timers, calls[1:], lambda call: policy.act([s for s, _ in call], [c for _, c in call]))
    return [("acting, 8 envs, new pages each call", times, parts, "decisions", 8)]


def dpo_path(timers, updates, args, store) -> list:
    policy, reference = fresh_policy(args.precision, store), fresh_policy(args.precision, store)
    learner = Learner(policy, reference, algorithm=DPOConfig())
    learner.train(updates[0])
    return [("DPO update (8 pairs, 8 anchors)", *measure(timers, updates[1:], learner.train), "updates", 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demos", type=int, default=300, help="expert episodes the data come from")
    ap.add_argument("--batches", type=int, default=12, help="timed calls per path")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}, "
          f"{args.threads} threads, precision {args.precision}")
    catalog = load_catalog()
    trajs = [t for t in generate_demos(catalog, "expert", args.demos) if t.score >= 1.0]
    steps: list[ILStep] = trajectory_steps(trajs, min_score=1.0)
    rng = random.Random(0)
    rng.shuffle(steps)
    pages = [(s, list(c)) for t in trajs for s, c in zip(t.states, t.candidates) if len(c) > 1]
    pairs = dpo_pairs(trajs, rng)
    anchors = [(s.state, list(s.candidates)) for s in steps]
    updates = [DPOBatch(pairs[i:i + 8], anchors[i:i + 8]) for i in range(0, 8 * (args.batches + 1), 8)]
    timers = Timers()
    install(timers)
    with tempfile.TemporaryDirectory() as folder:
        store = EncodingStore(folder, max_bytes=1 << 40)
        prefill(store, args.precision, pages + [(c.states[t], c.candidates[t]) for u in updates
                                                for c, _ in u.pairs for t in range(c.num_steps)])
        rows = {}
        for path, data in ((il_path, steps), (acting_path, pages), (dpo_path, updates)):
            for mode, s in (("no shared encodings", None), ("shared encodings, warm", store)):
                for label, times, parts, unit, per_call in path(timers, data, args, s):
                    report(f"{label} [{mode}]", times, parts, unit, per_call)
                    rows.setdefault(label, []).append(statistics.median(times))
    print("\nspeed-up from shared encodings (a worker or an earlier run encoded these texts), median s/call:")
    for label, (plain, shared) in rows.items():
        print(f"  {label:<42} {plain:.3f} -> {shared:.3f}  x{plain / shared:.2f}")


if __name__ == "__main__":
    main()
