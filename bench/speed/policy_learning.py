"""Learning cost of the policy: one DPO-like update on 4 trajectory pairs.

    python bench/speed/policy_learning.py [--repeats 3] [--threads 2] [--configs full256 cpu128 ...]
                                    [--precisions fp32 bf16] [--encoders minilm bert-base]
                                    [--bert-base LOCAL_DIR]

A batch = 8 trajectories x 8 steps x 12 candidates (4 chosen/rejected pairs);
reference log-probs are assumed precomputed (stored with each trajectory), so an
update = `evaluate` on 64 steps, the sum of step log-probs per trajectory, the
sigmoid DPO loss (Rafailov et al. 2023, Eq. 7), backward, clip, AdamW step. Each
timed update uses new trajectories: the common buttons' encodings are cached
(CPU preset) but each trajectory's products/options are new strings, unless
`--warm-actions` (all strings seen before, as with a small catalog).

Configurations:
  full256  full fine-tuning, state length 256 (the `full` preset, the GPU default)
  full128  full fine-tuning, state length 128
  cpu128   the `cpu` preset: top layer + heads train, frozen cached action side, 128
  cpu256   the `cpu` preset's design at state length 256
  top2_128 the `cpu` preset with the top two layers trained
Encoders: minilm (the shipped MiniLM-L6) and bert-base (a local BERT-base given by
`--bert-base`, else BERT-base-shaped random weights: `common.random_bert_policy`; the
output says which). Configurations are timed round-robin (one update each per repeat)
so that noise from other work on the machine hits all of them alike. Prints
seconds/update and pairs/s, median [min-max] over `--repeats`, ratios to full256, and
with both encoders BERT-base's seconds/update over MiniLM-L6's.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import time

import torch
import torch.nn.functional as F
from common import BERT_BASE_LABEL, decision, random_bert_policy, spread

from policies.policy import Policy, preset_config

NUM_PAIRS, STEPS, CANDIDATES, BETA = 4, 8, 12, 0.1
CONFIGS = {
    "full256": preset_config("full", max_state_tokens=256),
    "full128": preset_config("full", max_state_tokens=128),
    "cpu128": preset_config("cpu"),
    "cpu256": preset_config("cpu", max_state_tokens=256),
    "top2_128": preset_config("cpu", trainable_top_layers=2),
}


def trajectories(seed: int) -> tuple[list[str], list[list[str]], list[int]]:
    """Flat steps of 2 * NUM_PAIRS trajectories: trajectory-major, STEPS each."""
    rng = random.Random(seed)
    steps = [decision(rng, CANDIDATES) for _ in range(2 * NUM_PAIRS * STEPS)]
    return [s for s, _ in steps], [c for _, c in steps], [rng.randrange(CANDIDATES) for _ in steps]


def dpo_update(policy: Policy, optimizer: torch.optim.Optimizer, seed: int) -> float:
    states, cands, actions = trajectories(seed)
    ref_logp = torch.full((NUM_PAIRS, 2), -2.5 * STEPS)  # precomputed reference sums (P, 2)
    logp = policy.evaluate(states, cands, actions).logp  # (2P*T,)
    traj_logp = logp.view(NUM_PAIRS, 2, STEPS).sum(-1)  # (P, 2): chosen, rejected
    margin = (traj_logp - ref_logp)[:, 0] - (traj_logp - ref_logp)[:, 1]  # (P,)
    loss = -F.logsigmoid(BETA * margin).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.trainable_parameters(), 1.0)
    optimizer.step()
    policy.mark_updated()
    return loss.item()


def build_policy(encoder: str, config, bert_base: str | None) -> Policy:
    if encoder == "minilm":
        return Policy(config)
    return Policy(dataclasses.replace(config, model=bert_base)) if bert_base else random_bert_policy(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--configs", nargs="+", default=["full256", "cpu128"], choices=list(CONFIGS))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--encoders", nargs="+", default=["minilm"], choices=["minilm", "bert-base"])
    parser.add_argument("--bert-base", help="a local BERT-base directory (default: BERT-base-shaped random weights)")
    parser.add_argument("--warm-actions", action="store_true",
                        help="warm up on the timed batches too: every action string already cached "
                             "(the steady state of a small catalog, e.g. the default 1k products)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"policy learning: DPO update, {NUM_PAIRS} pairs = {2 * NUM_PAIRS} traj x {STEPS} steps x "
          f"{CANDIDATES} candidates, torch threads {torch.get_num_threads()}, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {args.repeats} repeats interleaved round-robin; "
          f"action strings {'all cached (--warm-actions)' if args.warm_actions else 'new per update'}; "
          f"median [min-max]")
    if "bert-base" in args.encoders:
        print(f"  bert-base = {args.bert_base or BERT_BASE_LABEL}")
    runs = {}
    for encoder in args.encoders:
        for precision in args.precisions:
            for name in args.configs:
                config = dataclasses.replace(CONFIGS[name], precision=precision)
                policy = build_policy(encoder, config, args.bert_base)
                optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-5)
                dpo_update(policy, optimizer, seed=10_000)  # warm-up: allocations, common buttons cached
                for seed in range(args.repeats) if args.warm_actions else ():
                    dpo_update(policy, optimizer, seed=seed)
                runs[encoder, name, precision] = (policy, optimizer)
    times: dict[tuple[str, str, str], list[float]] = {key: [] for key in runs}
    for r in range(args.repeats):  # round-robin, so machine noise hits every config alike
        for key, (policy, optimizer) in runs.items():
            start = time.perf_counter()
            dpo_update(policy, optimizer, seed=r)
            times[key].append(time.perf_counter() - start)
    for (encoder, name, precision), ts in times.items():
        n_train = sum(p.numel() for p in runs[encoder, name, precision][0].trainable_parameters())
        print(f"  {encoder:9s} {name:9s} {precision}  trained {n_train / 1e6:6.2f}M params  "
              f"s/update {spread(ts):>20s}  pairs/s {spread([NUM_PAIRS / t for t in ts]):>22s}")
    med = {key: statistics.median(ts) for key, ts in times.items()}
    for encoder in args.encoders:
        for precision in args.precisions:
            if (encoder, "full256", precision) in med:
                full = med[encoder, "full256", precision]
                print(f"  {encoder} speed-up vs full256 ({precision}): " + ", ".join(
                    f"{n} x{full / med[encoder, n, precision]:.1f}" for n in args.configs))
    if len(args.encoders) == 2:
        for name in args.configs:
            for precision in args.precisions:
                print(f"  bert-base / minilm s/update, {name} {precision}: "
                      f"x{med['bert-base', name, precision] / med['minilm', name, precision]:.1f}")


if __name__ == "__main__":
    main()
