"""The learner group: 2 learners (two processes, gloo) and 1 learner on the same global
batches end with the same parameters after 20 updates, for DPO and for PPO; the
gradient all-reduce keeps "no gradient" apart from a zero gradient; shards cover a
batch once."""

from __future__ import annotations

import random

import pytest
import torch
import torch.multiprocessing as mp

from learner.batches import DPOBatch, PPOBatch
from learner.group import SOLO, TorchGroup, connect_store, open_store, share_bounds, sum_values
from policies.policy import Policy
from rollout_workers.schema import Trajectory
from tests.learner.conftest import FROZEN, TINY, make_learner, with_behaviour

NUM_UPDATES = 20
WORDS = "red blue green shirt bag shoes lamp mug desk sofa cable charger".split()
RUNS = {  # name -> (policy config, learner settings); DPO "step" is the shipped recipe's loss
    "dpo-step": (FROZEN, dict(algo="dpo", scope="step", beta=0.5, sft_coef=2.0, kl_coef=2.0, anchor_states=3)),
    "dpo-trajectory": (TINY, dict(algo="dpo", scope="trajectory", beta=0.5, sft_coef=1.0)),
    "ppo": (TINY, dict(algo="ppo", kl_coef=0.1, ppo_epochs=2, minibatch_size=4)),
}


def shopping_episode(rng: random.Random, words: list[str], actions: list[int]) -> Trajectory:
    """A search, results and an item page for `words`; `actions` picks one candidate per
    step (its length is the episode's); reward 1 for buying the first result."""
    a, b, c = words
    states = [f"instruction: i need a {a} {b} [SEP] search",
              f"instruction: i need a {a} {b} [SEP] back to search [SEP] b01 {a} {b} [SEP] b02 {c} {b}",
              f"instruction: i need a {a} {b} [SEP] {a} {b} [SEP] price: $1{rng.randint(0, 9)}.00 [SEP] buy now"]
    candidates = [[f"search[{a} {b}]", f"search[{c}]"], ["click[b01]", "click[b02]", "click[next >]"],
                  ["click[buy now]", "click[< prev]"]]
    n = len(actions)
    reward = float(n == 3 and actions[1] == 0 and actions[2] == 0)
    return Trajectory(goal_id=0, source="policy", states=states[:n], candidates=candidates[:n], chosen=list(actions),
                      logp=[0.0] * n, values=[0.0] * n, rewards=[0.0] * (n - 1) + [reward], terminated=True,
                      policy_version=0, score=reward)


def dpo_batches(seed: int, with_anchors: bool) -> list[DPOBatch]:
    """3 pairs per update (1 + 2 over two ranks): they part at the search, at the click,
    or never (left out by the "step" scope; the first pair always parts, so rank 1 may
    compare nothing while rank 0 does); 3 anchor states."""
    rng = random.Random(seed)
    batches = []
    for _ in range(NUM_UPDATES):
        pairs = []
        for i in range(3):
            words = rng.sample(WORDS, 3)
            rejected = rng.choice([[1, 0, 0], [0, 1, 0], [0, 2]] + ([[0, 0, 0]] if i else []))
            pairs.append((shopping_episode(rng, words, [0, 0, 0]), shopping_episode(rng, words, rejected)))
        anchors = [(t.states[1], t.candidates[1]) for t, _ in pairs] if with_anchors else []
        batches.append(DPOBatch(pairs, anchors))
    return batches


def ppo_batches(seed: int) -> list[PPOBatch]:
    """3 trajectories of 1 to 3 steps per update, logp and values from the initial policy."""
    rng = random.Random(seed)
    behaviour = Policy(TINY)
    batches = []
    for _ in range(NUM_UPDATES):
        trajs = []
        for _ in range(3):
            n = rng.randint(1, 3)
            trajs.append(shopping_episode(rng, rng.sample(WORDS, 3), [rng.randint(0, 1) for _ in range(n)]))
        batches.append(PPOBatch(with_behaviour(behaviour, trajs)))
    return batches


def train_runs(batches: dict[str, list], group, **changes) -> dict[str, dict]:
    """Each run of RUNS for NUM_UPDATES updates as a rank of `group` (settings changed by
    `changes`); its final weights and metrics."""
    out = {}
    for name, runs in batches.items():
        policy_config, settings = RUNS[name]
        learner = make_learner(policy_config, **settings, **changes)
        learner.join(group)
        metrics = [learner.train(b) for b in runs]
        out[name] = {"weights": {k: v.clone() for k, v in learner.policy.model.state_dict().items()},
                     "metrics": metrics}
    return out


def _rank_main(rank: int, port: int, batches: dict[str, list], out_dir: str) -> None:
    torch.set_num_threads(1)
    group = TorchGroup(rank, 2, connect_store("127.0.0.1", port), "cpu")
    try:
        torch.save(train_runs(batches, group), f"{out_dir}/rank{rank}.pt")
    finally:
        group.close()


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||a||."""
    return float((a - b).norm() / a.norm().clamp(min=1e-12))


ROUNDING_DECIDED = ("attention.self.key.bias", "head.out.bias", "head.mix.bias")
"""Where the loss has a flat direction, AdamW's per-coordinate normalisation turns the
rounding noise of a zero gradient into steps of about lr, so a parameter's end value
depends on the order of float additions: attention key biases (softmax ignores a shift
shared by all keys), the scorer's output bias (log-softmax over the candidates ignores
it) and ReLU units of the head that fire only on tokens every candidate shares."""


def test_two_learners_end_where_one_learner_ends(tmp_path):
    batches = {"dpo-step": dpo_batches(1, True), "dpo-trajectory": dpo_batches(2, False), "ppo": ppo_batches(3)}
    store = open_store("127.0.0.1")  # the rendezvous: the test process keeps it
    ranks = mp.spawn(_rank_main, args=(store.port, batches, str(tmp_path)), nprocs=2, join=False)
    one = train_runs(batches, SOLO)  # meanwhile, one learner
    # One learner against itself with other forward chunks (the same sums, other rounding):
    # the tensors where it does not reproduce itself to 1e-5 are the flat directions.
    rechunked = train_runs(batches, SOLO, max_steps_per_forward=1)
    while not ranks.join():
        pass
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for name, (policy_config, settings) in RUNS.items():
        start = make_learner(policy_config, **settings).policy.model.state_dict()
        solo, pair = one[name]["weights"], [r[name]["weights"] for r in ranks]
        again = rechunked[name]["weights"]
        flat = {k for k in solo if relative_difference(solo[k], again[k]) > 1e-5}
        assert all(k.endswith(ROUNDING_DECIDED) for k in flat), (name, flat)
        for k in solo:
            assert torch.equal(pair[0][k], pair[1][k]), (name, k)  # the two ranks hold the very same weights
            if k not in flat:
                assert relative_difference(solo[k], pair[0][k]) <= 1e-5, (name, k)
        moved = max(relative_difference(start[k], solo[k]) for k in solo if k not in flat)
        assert moved > 1e-2, (name, moved)  # the updates moved the weights far beyond the tolerance
        for m1, m2 in zip(one[name]["metrics"], ranks[0][name]["metrics"]):  # metrics over the whole batch
            for key in ("loss", "grad_norm", "pairs", "steps", "data_version_min", "divergent_pairs", "anchor_kl"):
                if key in m1:
                    assert m2[key] == pytest.approx(m1[key], rel=1e-4, abs=1e-6), (name, key)


def test_a_group_of_one_returns_its_input():
    assert (SOLO.rank, SOLO.size, SOLO.bounds(5)) == (0, 1, (0, 5))
    items = [1, 2, 3]
    assert SOLO.shard(items) is items and SOLO.broadcast(items) is items and SOLO.gather(7) == [7]
    assert sum_values(SOLO, {"a": 0.5, "b": 1.5}) == {"a": 0.5, "b": 1.5}


def test_shares_cover_a_batch_once_with_sizes_one_apart():
    for n in range(0, 9):
        for size in (2, 3, 4):
            parts = [list(range(n))[slice(*share_bounds(n, r, size))] for r in range(size)]
            assert [x for p in parts for x in p] == list(range(n))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert share_bounds(3, 0, 2) == (0, 1) and share_bounds(3, 1, 2) == (1, 3)
    with pytest.raises(ValueError, match="at least 2 ranks"):
        TorchGroup(0, 1, None, "cpu")


def _grads_main(rank: int, port: int, out_dir: str) -> None:
    group = TorchGroup(rank, 2, connect_store("127.0.0.1", port), "cpu")
    try:
        params = [torch.nn.Parameter(torch.zeros(2)) for _ in range(3)]
        params[0].grad = torch.tensor([1.0, 2.0]) * (rank + 1)  # both ranks
        params[1].grad = torch.tensor([5.0, -1.0]) if rank == 1 else None  # rank 1 only
        group.sum_grads(params)  # params[2]: no rank has a gradient
        gathered = group.gather({"rank": rank})
        values = sum_values(group, {"x": 0.25 * (rank + 1), **({"only1": 2.0} if rank else {})})
        torch.save({"grads": [p.grad for p in params], "gathered": gathered, "values": values,
                    "broadcast": group.broadcast(f"from {rank}")}, f"{out_dir}/grads{rank}.pt")
    finally:
        group.close()


def test_gradients_sum_over_ranks_and_none_stays_none(tmp_path):
    store = open_store("127.0.0.1")
    mp.spawn(_grads_main, args=(store.port, str(tmp_path)), nprocs=2)
    for rank in range(2):
        got = torch.load(tmp_path / f"grads{rank}.pt")
        torch.testing.assert_close(got["grads"][0], torch.tensor([3.0, 6.0]))
        torch.testing.assert_close(got["grads"][1], torch.tensor([5.0, -1.0]))
        assert got["grads"][2] is None  # AdamW skips it, as one learner's would
        assert got["gathered"] == [{"rank": 0}, {"rank": 1}]
        assert got["values"] == {"x": 0.75, "only1": 2.0} and got["broadcast"] == "from 0"
