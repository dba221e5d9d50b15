"""Shared pieces of the policy benchmarks: WebShop-like synthetic batches, timing, timers.

States imitate WebShop's `text` observation of a results page (instruction first,
then buttons, then 10 products with ASIN, title and price) and are long enough to
fill the token limit, which is the expensive case. Candidates mix the buttons
every page has (these repeat across envs and steps) with ASINs / options that
are new to each env.
"""

from __future__ import annotations

import contextlib
import inspect
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

WORDS = """organic cotton slim fit long sleeve shirt women men casual summer dress
wireless bluetooth headphones noise cancelling over ear stainless steel water bottle
insulated gluten free protein bar chocolate peanut butter pack vegan leather wallet
travel backpack waterproof laptop sleeve usb charger fast charging cable phone case
shockproof clear soft silicone makeup brush set eye shadow palette hair extension
natural wavy curly shampoo sulfate paraben argan oil face mask moisturizer cream
anti aging vitamin serum running shoes breathable mesh sneakers non slip sole kids
toddler baby bedding queen size sheet set microfiber pillow memory foam mattress
topper led desk lamp dimmable bedroom nightstand wood coffee table living room
""".split()
COLORS = "red blue black white navy gray pink green beige brown purple".split()
SIZES = "x-small small medium large x-large xx-large 6 7 8 9 10 11".split()
BUTTONS = ["click[back to search]", "click[next >]", "click[< prev]", "click[buy now]",
           "click[description]", "click[features]"]


def _title(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).title()


def _asin(rng: random.Random) -> str:
    return "B0" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))


def instruction(rng: random.Random) -> str:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12)))
    return (f"i am looking for {words} in {rng.choice(COLORS)} color and size {rng.choice(SIZES)}, "
            f"and price lower than {rng.randint(2, 9)}0.00 dollars")


def results_page(rng: random.Random) -> tuple[str, list[str]]:
    """A results-page text and its 10 product ASINs (lower-cased, as clicks are)."""
    asins = [_asin(rng) for _ in range(10)]
    parts = ["Instruction:", instruction(rng), "Back to Search", "Page 2 (Total results: 50)",
             "< Prev", "Next >"]
    for a in asins:
        parts += [a, _title(rng), f"${rng.randint(5, 90)}.{rng.randint(0, 99):02d}"]
    return " [SEP] ".join(parts), [a.lower() for a in asins]


def decision(rng: random.Random, num_candidates: int = 12) -> tuple[str, list[str]]:
    """One env's (state, candidates): 6 common buttons + products/options of its own."""
    state, asins = results_page(rng)
    own = [f"click[{a}]" for a in asins] + [f"click[{c}]" for c in rng.sample(COLORS, 3)]
    return state, (BUTTONS + own)[:num_candidates]


def batch(seed: int, num_envs: int, num_candidates: int = 12) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    pairs = [decision(rng, num_candidates) for _ in range(num_envs)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def sync(device: str) -> None:
    """Wait for a GPU's queued work (before reading a clock); nothing on a CPU."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def spread(xs: list[float]) -> str:
    """Median [min-max]."""
    return f"{statistics.median(xs):.3g} [{min(xs):.3g}-{max(xs):.3g}]"


class Timers:
    """Seconds per named part, accumulated by wrappers around the functions that do the work.
    Exclusive: time in a nested timed call counts for the inner part only, so the parts add
    up to the time spent in any of them."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list] = []  # [name, start, seconds of nested parts]

    @contextlib.contextmanager
    def part(self, name: str):
        self._stack.append([name, time.perf_counter(), 0.0])
        try:
            yield
        finally:
            _, start, nested = self._stack.pop()
            spent = time.perf_counter() - start
            self.seconds[name] += spent - nested
            if self._stack:
                self._stack[-1][2] += spent

    def wrap(self, owner, attr: str, name: str | Callable[..., str]) -> None:
        """Replace `owner.attr` (a function, method or classmethod) by a timed version; `name`
        is the part, or a function of the call's arguments that names it."""
        original = getattr(owner, attr)
        name_of = name if callable(name) else (lambda *a, **k: name)
        static = inspect.getattr_static(owner, attr)  # a classmethod as defined, not bound
        if isinstance(static, classmethod):
            func = static.__func__

            def timed_classmethod(cls, *args, **kwargs):
                with self.part(name_of(cls, *args, **kwargs)):
                    return func(cls, *args, **kwargs)

            setattr(owner, attr, classmethod(timed_classmethod))
            return

        def timed(*args, **kwargs):
            with self.part(name_of(*args, **kwargs)):
                return original(*args, **kwargs)

        setattr(owner, attr, timed)


BERT_BASE_LABEL = "BERT-base-shaped, random weights (BertConfig defaults: 12 layers x 768, 110M)"


def random_bert_policy(config, **shape):
    """A `Policy` with `config`'s preset on a randomly initialised BERT: BertConfig's
    defaults (BERT-base's shape) unless `shape` changes fields (e.g. hidden_size=32 in
    smoke runs). The tokenizer is the shipped MiniLM's, whose 30,522-word uncased
    vocabulary is BERT-base's, so token counts are BERT-base's. Same config.seed ->
    same weights (a DPO reference equal to its policy)."""
    import torch
    from transformers import AutoTokenizer

    from policies import encoder as enc
    from policies.model import ActionScorer
    from policies.policy import Policy

    tokenizer = AutoTokenizer.from_pretrained(enc.default_model_path(), local_files_only=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        encoder = enc.model_from_config({"model_type": "bert", **shape}, dropout=config.dropout)
        model = ActionScorer(encoder, config.trainable_top_layers, config.freeze_action_side)
    return Policy(config, model, tokenizer)
