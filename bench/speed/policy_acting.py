"""Acting throughput of the policy: decisions/s for 8 envs batched, 12 candidates each.

    python bench/speed/policy_acting.py [--lengths 256 128] [--repeats 5] [--threads 2]
                                        [--encoder-layers 2]

Modes, all with the shipped MiniLM-L6 cut to the CPU preset's 2 layers (`--encoder-layers
6`: all of them, as before 2026-12-04), measured in the same run:
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

Beside each mode: its arithmetic per decision (matrix-product FLOPs counted by
torch's FlopCounterMode on one call) and the share it reaches of this core's
matrix-product rate, measured in the same run (the encoder's linear layers on a
batch of 8 x 128 tokens, fp32 and bf16). A mode near 100% is bound by arithmetic:
it gets faster only with fewer FLOPs per decision.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
from common import batch, spread
from torch.utils.flop_counter import FlopCounterMode

from policies.config import PRESETS
from policies.policy import Policy, PolicyConfig

NUM_ENVS, NUM_CANDIDATES = 8, 12
FRESH = 100  # new batches per half-warm mode: at most FRESH - 2 timed repeats


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


def modes(length: int, layers: int) -> dict[str, Callable[[int], object]]:
    """Mode name -> a function of the repeat index that makes one batched decision."""
    base = Policy(PolicyConfig(max_state_tokens=length, encoder_layers=layers))
    states, cands = batch(0, NUM_ENVS, NUM_CANDIDATES)
    # New batches for the half-warm modes, one per call: repeat r takes [r]; the warm-up
    # call takes [-1] and the FLOP count [-2], so no call sees a batch another has cached.
    fresh = [batch(seed, NUM_ENVS, NUM_CANDIDATES) for seed in range(1, 1 + FRESH)]
    fresh_bf16 = [batch(seed, NUM_ENVS, NUM_CANDIDATES) for seed in range(1 + FRESH, 1 + 2 * FRESH)]
    cross = CrossEncoder(base, length + base.config.max_action_tokens)
    nocache = base.with_config(action_cache_size=0)
    bf16 = base.with_config(precision="bf16")
    return {
        "(a) cross-encoder": lambda r: cross.act(states, cands),
        "(b) separate, no cache": lambda r: nocache.act(states, cands),
        "(c) cache warm": lambda r: base.act(states, cands),
        "(c') cache half warm": lambda r: base.act(*fresh[r]),
        "(d) bf16, cache warm": lambda r: bf16.act(states, cands),
        "(d') bf16, half warm": lambda r: bf16.act(*fresh_bf16[r]),
    }


def product_rate(dtype: torch.dtype, repeats: int = 20) -> float:
    """This core's matrix-product rate in GFLOP/s: the best over MiniLM-L6's three
    linear-layer shapes (384 -> 384, 384 -> 1536, 1536 -> 384) applied to a state batch
    of 8 x 128 tokens by `F.linear`, the model's own call, median of `repeats` each."""
    rates = []
    for n_in, n_out in [(384, 384), (384, 1536), (1536, 384)]:
        x, w = torch.randn(1024, n_in, dtype=dtype), torch.randn(n_out, n_in, dtype=dtype)
        torch.nn.functional.linear(x, w)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.nn.functional.linear(x, w)
            seconds.append(time.perf_counter() - start)
        rates.append(2 * 1024 * n_in * n_out / statistics.median(seconds) / 1e9)
    return max(rates)


def flops_per_decision(fn: Callable[[int], object], repeat: int) -> float:
    """Matrix-product FLOPs of one batched call, per decision."""
    with FlopCounterMode(display=False) as counter:
        fn(repeat)
    return counter.get_total_flops() / NUM_ENVS


def measure(length: int, repeats: int, layers: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Decisions/s per mode (modes timed round-robin so machine noise hits all alike),
    and each mode's FLOPs per decision."""
    runs = modes(length, layers)
    for fn in runs.values():  # warm-up: caches filled, allocations made
        fn(-1)
    flops = {name: flops_per_decision(fn, -2) for name, fn in runs.items()}  # a call like a timed one
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn(r)
            rates[name].append(NUM_ENVS / (time.perf_counter() - start))
    return rates, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 128])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--encoder-layers", type=int, default=PRESETS["cpu"]["encoder_layers"],
                        help="MiniLM-L6's first N layers (default: the CPU preset's)")
    args = parser.parse_args()
    if not 1 <= args.repeats <= FRESH - 2:
        parser.error(f"--repeats: 1 to {FRESH - 2} (each half-warm mode has {FRESH} new batches)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"policy acting: MiniLM-L6's first {args.encoder_layers} layers, "
          f"{NUM_ENVS} envs x {NUM_CANDIDATES} candidates, "
          f"torch threads {torch.get_num_threads()}, {args.repeats} repeats interleaved; "
          f"decisions/s median [min-max]; CPU capability {torch.backends.cpu.get_cpu_capability()}")
    peak = {"fp32": product_rate(torch.float32), "bf16": product_rate(torch.bfloat16)}
    print(f"matrix products (the encoder's linear layers, 1,024 tokens), this run: "
          f"fp32 {peak['fp32']:.1f} GFLOP/s, bf16 {peak['bf16']:.1f} GFLOP/s")
    for length in args.lengths:
        results, flops = measure(length, args.repeats, args.encoder_layers)
        print(f"state length {length}:")
        baseline = statistics.median(results["(a) cross-encoder"])
        for name, values in results.items():
            rate = statistics.median(values)
            achieved = rate * flops[name] / 1e9
            kind = "bf16" if "bf16" in name else "fp32"
            print(f"  {name:24s} {spread(values):>24s}   x{rate / baseline:.1f}   "
                  f"{flops[name] / 1e9:6.2f} GFLOP/decision, {achieved:5.1f} GFLOP/s = "
                  f"{achieved / peak[kind]:4.0%} of {kind} products")


if __name__ == "__main__":
    main()
