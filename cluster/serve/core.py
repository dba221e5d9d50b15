"""What the Serve app does, without Ray: candidates, decisions, episodes, checkpoints.

The Ray Serve deployment (`cluster.serve.app`) and the in-process backend used by
tests both run these functions, so the HTTP API behaves the same with or without
Ray:

- `act_candidates` turns a request's available actions into the candidate texts
  the policy reads, exactly as the rollout workers do (`build_candidates`:
  `search[...]` -> one `search[<query>]` per query variant of the instruction,
  a product asin on a results page -> `click[item - <title>]`);
- `decide` picks an action from a batched `Policy.act` output (argmax when
  greedy, else the sample the policy drew);
- `run_episode` plays one episode through an async `act` callable, so every step
  of every concurrent episode joins the same dynamic batches as `/act`;
- `free_goal` makes a goal from a free instruction (no annotated target);
- `resolve_checkpoint` finds a checkpoint (a checkpoint directory, or a run
  directory's result, `cluster.run_state.result_checkpoint`), `checkpoint_stamp` tells a watcher a newer save
  landed, `load_policy` loads one consistently and `prefill_catalog` encodes the
  catalog's candidate texts before it serves;
- `LocalBackend` is the whole backend in one process, batching and admitting through
  `cluster.serve.runner.BatchRunner` as the deployment does.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Awaitable, Callable, Sequence

import torch

from cluster.components import share_encodings
from cluster.config import PolicySection
from cluster.run_state import result_checkpoint
from cluster.serve.runner import BatchRunner, Overloaded  # noqa: F401  (re-exported: the app, the API, tests)
from envs.catalog import Catalog, Goal
from envs.env import SEARCH_ACTION, Session, WebShopEnv
from envs.nouns import title_nouns
from policies.checkpoint import CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE, load_checkpoint, read_metadata
from policies.policy import ActOutput, Policy
from policies.search_queries import instruction_from_state, keyword_query, normalize_instruction, search_queries
from policies.candidates import (Candidates, build_candidates, catalog_texts, item_note, page_options,
                                 page_pricing, policy_state, state_text)

logger = logging.getLogger(__name__)


class RequestError(ValueError):
    """A request the server cannot act on; answered with 422 naming `field`."""

    def __init__(self, field_name: str, message: str, status: int = 422):
        super().__init__(f"{field_name}: {message}")
        self.field, self.message, self.status = field_name, message, status


# ------------------------------------------------------------------ candidates
def act_candidates(catalog: Catalog, available: Sequence[str], instruction: str | None) -> Candidates:
    """Candidate texts and env actions for `/act`, built like the rollout workers'.

    Raises:
        RequestError: `search[...]` offered without an instruction to make queries from.
    """
    if SEARCH_ACTION in available and not (instruction and instruction.strip()):
        raise RequestError("instruction", "'search[...]' is offered but no instruction was given "
                                          "or found in the observation ('Instruction: [SEP] ...')")
    # build_candidates reads only the session's instruction and page and the catalog's
    # asin index; "results" lets a known asin become its title, as on a results page.
    shim = SimpleNamespace(session=SimpleNamespace(goal=SimpleNamespace(instruction_text=instruction or ""),
                                                   page="results"), catalog=catalog)
    return build_candidates(shim, list(available), fallback_search(instruction))


def fallback_search(instruction: str | None) -> tuple[str, ...]:
    """The instruction as its own query when no query variant survives (e.g. "!!!")."""
    if instruction and instruction.strip() and not search_queries(instruction):
        return (instruction.strip(),)
    return ()


def act_state(catalog: Catalog, observation: str | None, instruction: str | None,
              available: Sequence[str] = (), clicked_options: Sequence[str] = ()) -> str:
    """The state text the policy reads, built like `policy_state`: the observation
    (else the instruction page), on an item page led by the option and price notes
    (its option groups and prices read back from the page text and its actions) and
    by "You have clicked <option>." for each chosen option."""
    text = observation if observation else f"WebShop [SEP] Instruction: [SEP] {instruction or ''} [SEP] Search"
    note = None
    if observation and instruction:
        options = page_options(observation, available, catalog.option_values.keys())
        note = item_note(instruction, options, catalog.option_values, page_pricing(observation))
    return state_text(text, note, clicked_options)


def request_instruction(observation: str | None, instruction: str | None, max_chars: int = 2000) -> str | None:
    """The instruction given, else the one the observation shows ("Instruction: [SEP] ..."),
    else the observation's own text (a client that sends just "red shoes under $40");
    extracted ones are whitespace-collapsed and capped at `max_chars`."""
    if instruction:
        return instruction
    if not observation:
        return None
    return instruction_from_state(observation, max_chars) or normalize_instruction(observation, max_chars)


# ------------------------------------------------------------------ decisions
@dataclass(frozen=True)
class ActItem:
    """One state to act on (one element of a dynamic batch)."""

    state: str
    candidates: list[str]  # (K,) candidate texts
    greedy: bool = True


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one `ActItem`."""

    index: int
    logp: float
    value: float
    probs: list[float]  # (K,)
    version: int  # policy version that decided
    batch_size: int = 1  # how many states shared the forward pass


def decide(out: ActOutput, greedy: bool, version: int, batch_size: int) -> Decision:
    """A `Decision` from a sampled `ActOutput`: the argmax instead when `greedy`."""
    index = max(range(len(out.probs)), key=out.probs.__getitem__) if greedy else out.index
    logp = math.log(max(out.probs[index], 1e-45)) if greedy else out.logp
    return Decision(index, logp, out.value, list(out.probs), version, batch_size)


def act_batch(policy: Policy, items: Sequence[ActItem], generator: torch.Generator | None = None) -> list[Decision]:
    """One batched forward pass for many requests (sampled; greedy ones take the argmax)."""
    outs = policy.act([i.state for i in items], [i.candidates for i in items], greedy=False, generator=generator)
    return [decide(o, i.greedy, policy.version, len(items)) for o, i in zip(outs, items)]


# ------------------------------------------------------------------ episodes
PRICE = re.compile(r"price\s+(?:lower|less)\s+than\s+\$?\s*([\d,]+(?:\.\d+)?)", re.IGNORECASE)


def free_goal(instruction: str) -> Goal:
    """A goal for a free instruction: no annotated product, attributes or options, so
    its reward counts only the product type (the nouns of the instruction's keyword
    query against the bought title) and the price clause, if any."""
    m = PRICE.search(instruction)
    upper = float(m.group(1).replace(",", "")) if m else math.inf
    return Goal(goal_id=-1, asin="", instruction_text=instruction, attributes=(), goal_options=(),
                price_upper=upper, query="", product_category="", name="", category="",
                title_nouns=tuple(title_nouns(keyword_query(instruction))))


class ServeEnv(WebShopEnv):
    """A `WebShopEnv` that can also start on a goal that is not in the catalog
    (`reset` takes goal ids only; this does the same steps with a given goal)."""

    def reset_to_goal(self, goal: Goal) -> tuple[str, dict]:
        self.session = Session(goal=goal)
        self.steps = 0
        self._show()
        return self._observation(), self._info(valid=True)


ActFn = Callable[[ActItem], Awaitable[Decision]]


def _step_inputs(env: ServeEnv, goal: Goal, obs: str, info: dict) -> tuple[Candidates, str]:
    return build_candidates(env, info["available_actions"], fallback_search(goal.instruction_text)), \
        policy_state(env, obs)


async def run_episode(env: ServeEnv, goal: Goal, act: ActFn, greedy: bool = True) -> dict:
    """Play one episode, each step through `act`; the whole trajectory as a dict. The env's
    CPU work (pages, candidates, state text) runs in a worker thread, off the event loop."""
    obs, info = await asyncio.to_thread(env.reset_to_goal, goal)
    steps, reward, reward_info, terminated, truncated = [], 0.0, None, False, False
    while not (terminated or truncated):
        cands, state = await asyncio.to_thread(_step_inputs, env, goal, obs, info)
        d = await act(ActItem(state, list(cands.texts), greedy))
        action = cands.actions[d.index]
        steps.append({"page": info["page"], "observation": obs, "state": state,
                      "candidates": [{"text": t, "action": a, "prob": p}
                                     for t, a, p in zip(cands.texts, cands.actions, d.probs)],
                      "chosen": d.index, "action": action, "logp": d.logp, "value": d.value,
                      "policy_version": d.version})
        obs, reward, terminated, truncated, info = await asyncio.to_thread(env.step, action)
        steps[-1]["reward"] = float(reward)
        reward_info = info.get("reward_info", reward_info)
    return {"goal_id": goal.goal_id if goal.goal_id >= 0 else None, "instruction": goal.instruction_text,
            "graded": "goal" if goal.goal_id >= 0 else "free", "reward": float(reward) if terminated else 0.0,
            "reward_info": reward_info, "terminated": terminated, "truncated": truncated,
            "num_steps": len(steps), "final_observation": obs, "steps": steps}


# ------------------------------------------------------------------ checkpoints
def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint directory: `path` itself, or a run directory's result
    (`cluster.run_state.result_checkpoint`), made absolute.

    Raises:
        RequestError: (field "checkpoint") nothing loadable there.
    """
    try:
        candidate = result_checkpoint(Path(path))
        if (candidate / CONFIG_FILE).is_file():
            return candidate.resolve()
    except (OSError, ValueError) as e:  # a name too long, a NUL byte, no permission, a torn summary.json
        raise RequestError("checkpoint", f"{str(path)[:200]}: cannot be read: {type(e).__name__}", 404) from None
    raise RequestError("checkpoint", f"{str(path)[:200]}: not a policy checkpoint directory (no {CONFIG_FILE}) "
                                     f"nor a run directory with best/, checkpoint/ or il/checkpoint/", status=404)


def checkpoint_stamp(directory: Path) -> tuple:
    """Changes whenever a save completes (metadata.json is written last)."""
    st = [(directory / f).stat() for f in (METADATA_FILE, WEIGHTS_FILE)]
    return tuple((s.st_mtime_ns, s.st_size) for s in st)


def catalog_for(checkpoint: Path, catalog_dir: str | None, size: int | None, seed: int | None) -> Catalog:
    """The catalog given, else the one the checkpoint was trained on, else the default."""
    from cluster.data.sources import catalog_dir as resolve_dir
    from envs.generate import default_catalog

    if catalog_dir:
        return Catalog.from_dir(resolve_dir(directory=catalog_dir))
    trained = read_metadata(checkpoint).train_config.get("catalog") or {}
    trained_dir = resolve_dir(trained.get("source", "generated"), trained.get("dir"))
    if trained_dir and size is None and seed is None:
        return Catalog.from_dir(trained_dir)
    return default_catalog(size or trained.get("size", 1000), seed if seed is not None else trained.get("seed", 0))


@dataclass
class LoadedPolicy:
    """A policy with where it came from."""

    policy: Policy
    path: Path
    stamp: tuple
    generation: int = 0  # reloads ordered by the server (not the policy version)

    def describe(self) -> dict:
        return {"version": self.policy.version, "checkpoint": str(self.path), "generation": self.generation,
                "model": self.policy.config.model, "device": str(self.policy.device)}


def load_policy(path: str | os.PathLike, device: str = "cpu", catalog: Catalog | None = None,
                beside: Policy | None = None) -> LoadedPolicy:
    """Load a checkpoint (retried if a save lands while it is read); with `catalog`, its
    candidate texts' encodings are made ready before it serves (`prefill_catalog`).

    `beside`: the policy served now. When the new one has the same frozen parts (a reload
    of a run's later save), it takes over that policy's frozen-encoding caches and skips
    the prefill (the catalog's encodings are in the folder under the same namespace), so a
    replica's reload takes less of the CPU its admitted requests are waiting for. The caches
    are never used from two threads: the new policy touches them only once swapped in, and
    a replica runs one forward pass at a time."""
    for _ in range(3):
        directory = resolve_checkpoint(path)
        stamp = checkpoint_stamp(directory)
        policy = load_checkpoint(directory, device=device)
        share_encodings(PolicySection(), policy)  # the machine's folder, shared with training and other replicas
        shared = beside is not None and policy.share_frozen_caches(beside)  # False when frozen parts differ
        if checkpoint_stamp(directory) == stamp:
            if catalog is not None and not shared:
                prefill_catalog(policy, catalog)
            return LoadedPolicy(policy, directory, stamp)
    raise RuntimeError(f"{path}: the checkpoint kept changing while it was read")


async def load_beside(served: LoadedPolicy, path: str | os.PathLike, device: str, catalog: Catalog | None,
                      runner: BatchRunner) -> LoadedPolicy:
    """`load_policy(path, ...)` off the event loop, beside the `served` one (whose encodings it
    takes over when the frozen parts match), with `runner`'s admission told that a load is
    taking CPU from the forward passes meanwhile (`BatchRunner.loading`)."""
    with runner.loading():
        return await asyncio.to_thread(load_policy, path, device, catalog, served.policy)


PREFILL_MAX_TEXTS = 20_000
"""Catalogs offering more candidate texts than this are not encoded ahead (about 70 s of one
AVX2 core at this size with the cpu preset's 2-layer encoder, 3 minutes with 6 layers);
their texts are encoded as requests show them."""


def prefill_catalog(policy: Policy, catalog: Catalog) -> int:
    """Encode the frozen part of every candidate text `catalog` can offer but searches
    (`catalog_texts`: product links, options, buttons), so that a request of a new page
    encodes only its state and search queries. A pure function of the texts, kept in the
    machine's encoding folder: a later start, a reload of the same base model and the
    training runs find them there. Returns how many texts are ready (0: skipped)."""
    texts = catalog_texts(catalog)
    if len(texts) > PREFILL_MAX_TEXTS:
        logger.info("catalog offers %d candidate texts (> %d): encoded as requests show them",
                    len(texts), PREFILL_MAX_TEXTS)
        return 0
    start = time.perf_counter()
    if not policy.prefill_frozen([], texts):
        return 0
    logger.info("%d catalog candidate texts ready in %.1f s", len(texts), time.perf_counter() - start)
    return len(texts)


class LocalBackend:
    """The policy in this process (tests, debugging), with the same batching as Serve."""

    def __init__(self, checkpoint: str | os.PathLike, catalog: Catalog, device: str = "cpu",
                 max_batch_size: int = 32, reload_guard=None, max_waiting: int | None = None,
                 max_wait_s: float | None = None):
        self.loaded = load_policy(checkpoint, device, catalog)
        self.catalog = catalog
        self.reload_guard = reload_guard  # a cluster.serve.guard.ReloadGuard; None: reloads off
        self.generator = torch.Generator().manual_seed(0)
        # self.loaded is read when each forward pass starts: a reload never changes one mid-call
        self.runner = BatchRunner(lambda items: act_batch(self.loaded.policy, items, self.generator),
                                  max_batch_size, max_waiting, max_wait_s)

    async def act(self, item: ActItem) -> Decision:
        return (await self.runner.submit([item]))[0]

    async def version(self) -> dict:
        return {**self.loaded.describe(), "replicas": 1}

    async def reload(self, checkpoint: Path | None) -> dict:
        """Load `checkpoint` (vetted by `reload_guard`; None: the current one) and swap it in."""
        path = checkpoint or self.loaded.path
        try:
            new = await load_beside(self.loaded, path, str(self.loaded.policy.device), self.catalog, self.runner)
        except Exception as e:  # the type only: messages can name server paths
            raise RequestError("checkpoint", f"cannot be loaded: {type(e).__name__}", 409) from None
        new.generation = self.loaded.generation + 1
        self.loaded = new  # one reference swap: a batch in flight keeps the policy it started with
        return {**new.describe(), "replicas": 1, "replicas_updated": 1}
