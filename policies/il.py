"""Imitation learning: cross-entropy over candidates, and WebShop's human IL file format.

`ILTrainer.train_batch(steps) -> metrics` is one AdamW step on
-mean log pi(chosen | state, candidates); `train_il` runs epochs over a list of
`ILStep`s. `read_webshop_il` reads WebShop's human trajectories,
`il_trajs_finalized_images.jsonl`, one JSON trajectory per line:

    {"states": [str, ...],                 # page text before each step
     "available_actions": [[str, ...], ...],  # candidate actions at each step
     "action_idxs": [int, ...],            # chosen candidate; -1 = a search step
     "actions": [str, ...],                # optional: the action taken
     "actions_translate": [str, ...],      # optional: same, products by name
     "images": [0 | [float]*512, ...]}     # optional: image features (unused)

Search steps (index -1, no candidates) carry no choice to imitate; they are
skipped by `read_webshop_il` and returned by `read_webshop_search_demos` (for a
query generator). A bad record raises `ILFormatError` naming file, line, field.
`read_webshop_il` gives the file's own page texts and action strings; training
(`--demos`) replays the file in the env instead (`rollout_workers.human_demos`, which
reads it with `read_il_records`), so IL sees the states and candidates the policy acts on.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from policies.policy import Policy


@dataclass(frozen=True)
class ILStep:
    """One demonstrated decision."""

    state: str
    candidates: tuple[str, ...]
    chosen: int  # index into candidates


@dataclass(frozen=True)
class SearchDemo:
    """One demonstrated search: the page it was typed on and the query."""

    state: str
    query: str  # the text inside search[...]


class ILFormatError(ValueError):
    """A record of an IL trajectory file that cannot be used; names file, line, field."""

    def __init__(self, path: str | Path, line: int, field_name: str, problem: str):
        self.path, self.line, self.field_name = str(path), line, field_name
        super().__init__(f"{path}: line {line}: field '{field_name}': {problem}")


def _str_list(record: dict, key: str, err: Callable[[str, str], ILFormatError]) -> list[str]:
    value = record.get(key)
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise err(key, "must be a list of strings")
    return value


def _parse_record(text: str, err: Callable[[str, str], ILFormatError]) -> dict[str, Any]:
    """Validated {"states", "available_actions", "action_idxs", "actions"} of one line."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        raise err("<json>", f"not valid JSON: {e}") from e
    if not isinstance(record, dict):
        raise err("<json>", "a trajectory must be a JSON object")
    for key in ("states", "available_actions", "action_idxs"):
        if key not in record:
            raise err(key, "missing")
    states = _str_list(record, "states", err)
    avail = record["available_actions"]
    idxs = record["action_idxs"]
    actions = _str_list(record, "actions", err) if "actions" in record else None
    for key, value in (("available_actions", avail), ("action_idxs", idxs), ("actions", actions)):
        if value is not None and (not isinstance(value, list) or len(value) != len(states)):
            raise err(key, f"must be a list as long as 'states' ({len(states)} entries)")
    for i, (cands, idx) in enumerate(zip(avail, idxs)):
        if not isinstance(cands, list) or not all(isinstance(c, str) for c in cands):
            raise err(f"available_actions[{i}]", "must be a list of strings")
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise err(f"action_idxs[{i}]", f"must be an integer, got {idx!r}")
        if idx != -1 and not 0 <= idx < len(cands):
            raise err(f"action_idxs[{i}]", f"index {idx} outside its {len(cands)} available actions")
    return {"states": states, "available_actions": avail, "action_idxs": idxs, "actions": actions}


def read_il_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """The trajectories of a WebShop IL file, each checked: {"states", "available_actions",
    "action_idxs", "actions" (None when the file has none)}; raises ILFormatError."""
    with open(path, "rb") as f:  # decoded line by line, so a bad byte names its line
        for line_no, raw in enumerate(f, start=1):

            def err(field_name: str, problem: str, _line: int = line_no) -> ILFormatError:
                return ILFormatError(path, _line, field_name, problem)

            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise err("<encoding>", f"not UTF-8 text (byte {e.start} of the line)") from None
            if text.strip():
                yield _parse_record(text, err)


def reduce_candidates(step: ILStep, max_candidates: int, rng: random.Random) -> ILStep:
    """WebShop's action-space reduction for long lists: the first 6 candidates,
    a random sample of the rest, and always the chosen one."""
    n = len(step.candidates)
    if n <= max_candidates:
        return step
    keep = set(range(min(6, max_candidates - 1)))
    rest = [i for i in range(n) if i not in keep and i != step.chosen]
    keep.update(rng.sample(rest, max_candidates - 1 - len(keep)))
    keep.add(step.chosen)
    order = sorted(keep)
    return ILStep(step.state, tuple(step.candidates[i] for i in order), order.index(step.chosen))


def read_webshop_il(
    path: str | Path, max_candidates: int | None = None, seed: int = 0
) -> Iterator[ILStep]:
    """Choice steps of a WebShop human IL file (search steps skipped).

    Args:
        max_candidates: reduce longer candidate lists as WebShop's IL training did.
    """
    rng = random.Random(seed)
    for record in read_il_records(path):
        for state, cands, idx in zip(record["states"], record["available_actions"], record["action_idxs"]):
            if idx == -1:
                continue
            step = ILStep(state, tuple(cands), idx)
            yield reduce_candidates(step, max_candidates, rng) if max_candidates else step


def read_webshop_search_demos(path: str | Path) -> Iterator[SearchDemo]:
    """The search steps (index -1 with a `search[...]` action) of a WebShop IL file."""
    for record in read_il_records(path):
        for i, (state, idx) in enumerate(zip(record["states"], record["action_idxs"])):
            action = record["actions"][i] if record["actions"] else ""
            if idx == -1 and action.startswith("search[") and action.endswith("]"):
                yield SearchDemo(state, action[len("search["):-1])


@dataclass(frozen=True)
class ILConfig:
    """Imitation-learning hyperparameters."""

    num_epochs: int = 3
    """Passes over the demonstrations."""
    batch_size: int = 16
    """Decisions per optimizer step."""
    lr: float = 1e-4
    """AdamW learning rate."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip."""
    seed: int = 0
    """Shuffling seed."""


@dataclass(frozen=True)
class ILEpochMetrics:
    """One epoch of IL."""

    epoch: int
    loss: float  # mean cross-entropy over the epoch's batches
    accuracy: float  # fraction of training decisions whose argmax was the chosen one
    num_steps: int  # decisions seen
    seconds: float
    eval_accuracy: float | None = None  # on `eval_steps`, after the epoch


class ILTrainer:
    """AdamW on the policy's trainable parameters; one `train_batch` per step."""

    def __init__(self, policy: Policy, config: ILConfig = ILConfig()):
        self.policy = policy
        self.config = config
        self.optimizer = torch.optim.AdamW(
            policy.trainable_parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.num_updates = 0

    def set_lr_scale(self, scale: float) -> None:
        """Set every parameter group's learning rate to `scale` x the configured one."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * scale

    def train_batch(self, steps: Sequence[ILStep]) -> dict[str, float]:
        """One optimizer step on cross-entropy over candidates."""
        out = self.policy.evaluate(
            [s.state for s in steps], [list(s.candidates) for s in steps], [s.chosen for s in steps]
        )
        loss = -out.logp.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.trainable_parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.policy.mark_updated()
        self.num_updates += 1
        target = torch.as_tensor([s.chosen for s in steps], device=out.logp_all.device)
        correct = (out.logp_all.argmax(dim=-1) == target).float().mean()
        return {"loss": loss.item(), "accuracy": correct.item(), "grad_norm": float(grad_norm)}

    def fit(
        self, steps: Sequence[ILStep], eval_steps: Sequence[ILStep] | None = None
    ) -> list[ILEpochMetrics]:
        """`num_epochs` shuffled passes; metrics per epoch."""
        rng = random.Random(self.config.seed)
        order = list(range(len(steps)))
        history = []
        for epoch in range(self.config.num_epochs):
            start, losses, accs, weights = time.perf_counter(), [], [], []
            rng.shuffle(order)
            for i in range(0, len(order), self.config.batch_size):
                batch = [steps[j] for j in order[i : i + self.config.batch_size]]
                m = self.train_batch(batch)
                losses.append(m["loss"] * len(batch))
                accs.append(m["accuracy"] * len(batch))
                weights.append(len(batch))
            n = max(sum(weights), 1)
            eval_acc = choice_accuracy(self.policy, eval_steps) if eval_steps else None
            history.append(ILEpochMetrics(epoch, sum(losses) / n, sum(accs) / n, sum(weights),
                                          time.perf_counter() - start, eval_acc))
        return history


def train_il(
    policy: Policy,
    steps: Sequence[ILStep],
    config: ILConfig = ILConfig(),
    eval_steps: Sequence[ILStep] | None = None,
) -> list[ILEpochMetrics]:
    """Train `policy` in place by imitation; returns metrics per epoch."""
    return ILTrainer(policy, config).fit(steps, eval_steps)


def choice_accuracy(policy: Policy, steps: Sequence[ILStep], batch_size: int = 32) -> float:
    """Fraction of `steps` whose highest-scoring candidate is the chosen one."""
    correct = 0
    with torch.no_grad():
        for i in range(0, len(steps), batch_size):
            batch = steps[i : i + batch_size]
            out = policy.evaluate([s.state for s in batch], [list(s.candidates) for s in batch],
                                  [s.chosen for s in batch])
            best = out.logp_all.argmax(dim=-1).tolist()
            correct += sum(b == s.chosen for b, s in zip(best, batch))
    return correct / max(len(steps), 1)
