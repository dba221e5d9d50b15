"""Acting throughput of the policy: decisions/s for 8 envs batched, 12 candidates each.

    python bench/speed/policy_acting.py [--lengths 256 128] [--repeats 5] [--threads 2]

Modes, all with the default MiniLM-L6, measured in the same run:
  (a) cross-encoder baseline: every (state, action) pair concatenated and encoded;
  (b) this design, no cache: state encoded once per env, each distinct action once;
  (c) action cache warm: every candidate string already cached;
  (c') cache half warm: a new batch each call; the 6 common buttons cached,
       the 6 products/options of each env new (what rollouts see);
  (d) bf16 autocast (`precision="bf16"`), cache warm; (d') bf16, cache half warm.
A decision = one env's action; each figure is 8 / (seconds per batched `act`).
Modes are timed round-robin, one call each per repeat, so that noise from other
work on the machine hits all of them alike. Prints the median [min-max] over
`--repeats` calls, and ratios to (a).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
from common import batch, spread

from policies.policy import Policy, PolicyConfig

NUM_ENVS, NUM_CANDIDATES = 8, 12


class CrossEncoder:
    """Baseline: score each (state, action) pair by encoding it jointly ([CLS] -> logit)."""

    def __init__(self, policy: Policy, max_tokens: int):
        self.encoder, self.tokenizer, self.max_tokens = policy.model.encoder, policy.tokenizer, max_tokens
        self.out = torch.nn.Linear(self.encoder.config.hidden_size, 1)

    @torch.inference_mode()
    def act(self, states: list[str], candidates: list[list[str]]) -> list[int]:
        firsts = [s for s, c in zip(states, candidates) for _ in c]
        seconds = [a for c in candidates for a in c]
        enc = self.tokenizer(firsts, seconds, truncation="only_first", max_length=self.max_tokens,
                             padding=True, return_tensors="pt")
        logits = []
        for i in range(0, len(firsts), 16):  # 16 pairs per call: ~4k tokens
            hidden = self.encoder(input_ids=enc["input_ids"][i : i + 16],
                                  attention_mask=enc["attention_mask"][i : i + 16]).last_hidden_state
            logits.append(self.out(hidden[:, 0]).squeeze(-1))  # (n,)
        flat = torch.cat(logits)  # (sum K,)
        sizes = [len(c) for c in candidates]
        return [int(torch.multinomial(x.softmax(0), 1)) for x in flat.split(sizes)]


def modes(length: int) -> dict[str, Callable[[int], object]]:
    """Mode name -> a function of the repeat index that makes one batched decision."""
    base = Policy(PolicyConfig(max_state_tokens=length))
    states, cands = batch(0, NUM_ENVS, NUM_CANDIDATES)
    fresh = [batch(seed, NUM_ENVS, NUM_CANDIDATES) for seed in range(1, 200)]
    cross = CrossEncoder(base, length + base.config.max_action_tokens)
    nocache = base.with_config(action_cache_size=0)
    bf16 = base.with_config(precision="bf16")
    return {
        "(a) cross-encoder": lambda r: cross.act(states, cands),
        "(b) separate, no cache": lambda r: nocache.act(states, cands),
        "(c) cache warm": lambda r: base.act(states, cands),
        "(c') cache half warm": lambda r: base.act(*fresh[r]),
        "(d) bf16, cache warm": lambda r: bf16.act(states, cands),
        "(d') bf16, half warm": lambda r: bf16.act(*fresh[100 + r]),
    }


def measure(length: int, repeats: int) -> dict[str, list[float]]:
    """Decisions/s per mode; modes timed round-robin so machine noise hits all alike."""
    runs = modes(length)
    for fn in runs.values():  # warm-up: caches filled, allocations made
        fn(-1)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn(r)
            rates[name].append(NUM_ENVS / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 128])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"policy acting: MiniLM-L6, {NUM_ENVS} envs x {NUM_CANDIDATES} candidates, "
          f"torch threads {torch.get_num_threads()}, {args.repeats} repeats interleaved; "
          f"decisions/s median [min-max]")
    for length in args.lengths:
        results = measure(length, args.repeats)
        print(f"state length {length}:")
        baseline = statistics.median(results["(a) cross-encoder"])
        for name, values in results.items():
            print(f"  {name:24s} {spread(values):>24s}   x{statistics.median(values) / baseline:.1f}")


if __name__ == "__main__":
    main()
