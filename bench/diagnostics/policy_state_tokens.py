"""How much WebShop state text survives a cut to 128 (or 256) MiniLM tokens.

    python bench/diagnostics/policy_state_tokens.py [--episodes 200] [--agents expert random]

Runs agents of `envs` on goals of the default generated catalog, tokenizes every
observation the policy would see (text mode; the instruction comes first) with
the MiniLM tokenizer and reports per page type: median / p90 tokens, the share of
states kept whole, the share of tokens kept, and for results pages how many of
the 10 products' ASIN + title + price survive the cut (the policy must compare
products it cannot see otherwise). The instruction is always inside the cut.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from envs import WebShopEnv  # noqa: E402
from envs.agents import make_agent  # noqa: E402
from policies.encoder import load_pretrained  # noqa: E402

SEP = " [SEP] "


def collect(agent_name: str, episodes: int) -> dict[str, list[str]]:
    """Observations grouped by page type."""
    env = WebShopEnv(split="train")
    agent = make_agent(agent_name, seed=0)
    pages: dict[str, list[str]] = defaultdict(list)
    for goal_id in range(episodes):
        obs, info = env.reset(seed=goal_id, options={"goal_id": goal_id})
        agent.reset(env)
        done = False
        while not done:
            pages[info["page"]].append(obs)
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info))
            done = terminated or truncated
    return pages


def products_kept(text: str, tokenizer, cut: int) -> int:
    """Products (ASIN, title, price triples after the buttons) wholly inside the cut."""
    parts = text.split(SEP)
    first = next((i for i, p in enumerate(parts) if p.startswith("Next >") or p.startswith("< Prev")), 3)
    kept = 0
    for k in range(first + 1, len(parts) - 2, 3):
        prefix = SEP.join(parts[: k + 3])
        if len(tokenizer(prefix)["input_ids"]) > cut:
            break
        kept += 1
    return kept


def report(pages: dict[str, list[str]], tokenizer, cuts: list[int]) -> None:
    for page, texts in sorted(pages.items()):
        lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
        p90 = sorted(lengths)[int(0.9 * (len(lengths) - 1))]
        line = f"  {page:8s} n={len(texts):5d} tokens median {statistics.median(lengths):5.0f} p90 {p90:5d}"
        for cut in cuts:
            whole = sum(n <= cut for n in lengths) / len(lengths)
            share = sum(min(n, cut) for n in lengths) / sum(lengths)
            line += f" | cut {cut}: whole {whole:4.0%} tokens kept {share:4.0%}"
        print(line)
        if page == "results":
            sample = texts[:100]
            for cut in cuts:
                kept = [products_kept(t, tokenizer, cut) for t in sample]
                print(f"           results pages, products fully visible at {cut}: median "
                      f"{statistics.median(kept):.0f} of 10 (min {min(kept)}, max {max(kept)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--agents", nargs="+", default=["expert", "random"])
    parser.add_argument("--cuts", type=int, nargs="+", default=[128, 256])
    args = parser.parse_args()
    _, tokenizer = load_pretrained("default")
    for name in args.agents:
        pages = collect(name, args.episodes)
        all_texts = [t for ts in pages.values() for t in ts]
        lengths = [len(ids) for ids in tokenizer(all_texts)["input_ids"]]
        print(f"{name} agent, {args.episodes} episodes, {len(all_texts)} states; all states: tokens median "
              f"{statistics.median(lengths):.0f}; " + ", ".join(
                  f"whole at {c}: {sum(n <= c for n in lengths) / len(lengths):.0%}, tokens kept at {c}: "
                  f"{sum(min(n, c) for n in lengths) / sum(lengths):.0%}" for c in args.cuts))
        report(pages, tokenizer, args.cuts)


if __name__ == "__main__":
    main()
