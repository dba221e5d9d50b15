"""Run checkpoint generations (cluster/run_state.py): one commit for every part, a kill at
any point of a commit leaves the previous or the new generation whole, and `--resume`
goes on from it; a damaged or mixed generation is refused naming the file."""

from __future__ import annotations

import json
import shutil

import pytest
from safetensors.torch import load_file

from cluster.config import load_config
from cluster.loop import BEST_DIR, LocalLoop
from cluster.metrics import MetricsLog
from cluster.run_state import RUN_ID_FILE, RunStateError, load_committed
from cluster.train import prepare_run_dir
from envs.generate import load_catalog
from policies.checkpoint import load_checkpoint
from tests.kill_points import kill_points, kill_save_at

SETTINGS = {
    "policy": {"model": "tiny"},
    "catalog": {"size": 150, "seed": 4, "train_goals": 0},
    "worker": {"num_envs": 3, "max_steps": 6},
    "dpo": {"pairs_per_update": 2},
    "run": {"algo": "dpo", "num_workers": 0, "eval_episodes": 0, "episodes_per_round": 3, "seed": 5},
}


@pytest.fixture(scope="module")
def il_dir(tmp_path_factory):
    from policies.checkpoint import save_checkpoint
    from policies.policy import Policy, PolicyConfig

    path = tmp_path_factory.mktemp("il") / "checkpoint"
    save_checkpoint(Policy(PolicyConfig(model="tiny", seed=3)), path)
    return str(path)


def make_loop(out, il_dir) -> LocalLoop:
    cfg = load_config(overrides={**SETTINGS, "run": {**SETTINGS["run"], "out": str(out)}})
    cfg, out = prepare_run_dir(cfg)
    loop = LocalLoop(cfg, load_catalog(size=150, seed=4), il_dir, "cpu", out, MetricsLog(out))
    loop._start()
    loop.rollback_clock()
    return loop


def step_until_update(loop: LocalLoop) -> None:
    start = loop.counters["updates"]
    while loop.counters["updates"] == start:
        loop._step()


def test_kill_at_any_point_of_a_commit_leaves_a_whole_generation(tmp_path, il_dir):
    """Generation 1 after one update (with a best/); generation 2 after another, killed
    at each of >= 20 file-system calls: the next load gets 1 or 2 whole (the weights and
    counters of that update), OUT/best matches it, and a resume from it trains on."""
    run = tmp_path / "run"
    loop = make_loop(run, il_dir)
    evaluator = load_checkpoint(il_dir, device="cpu")
    step_until_update(loop)
    loop.best = {"success_rate": 0.5, "score": 0.4, "policy_version": loop.learner.version, "step": 1}
    version, weights = loop.current_weights()
    evaluator.set_weights(weights, version=version)
    loop.save_checkpoint(evaluator, directory=run / BEST_DIR)
    loop.commit(evaluator, rl_seconds=1.0)
    first = {k: v.clone() for k, v in loop.learner.policy.model.state_dict().items()}
    shutil.copytree(run, tmp_path / "template")
    step_until_update(loop)
    second = {k: v.clone() for k, v in loop.learner.policy.model.state_dict().items()}

    def fresh():
        shutil.rmtree(run)
        shutil.copytree(tmp_path / "template", run)

    def commit_second():
        loop.commit(evaluator, rl_seconds=2.0)

    points = kill_points(commit_second, tmp_path, at_most=24)
    assert len(points) >= 20
    outcomes, resumed = set(), 0
    for n, k in enumerate(points):
        fresh()
        kill_save_at(commit_second, k, tmp_path)
        committed = load_committed(run)
        updates = committed.record["counters"]["updates"]
        assert updates in (1, 2), k
        outcomes.add(updates)
        expected = first if updates == 1 else second
        saved = load_file(str(committed.policy_dir / "model.safetensors"))
        assert all(saved[name].equal(expected[name]) for name in expected), k
        assert committed.record["best"]["eval"]["score"] == 0.4
        if n % 8 == 0:  # --resume continues from it (and the next commit repairs the debris)
            again = make_loop(run, il_dir)
            assert again.counters["updates"] == updates and again.best["score"] == 0.4
            step_until_update(again)
            again.commit(load_checkpoint(il_dir, device="cpu"), rl_seconds=3.0)
            assert load_committed(run).record["counters"]["updates"] == updates + 1
            assert [p.name for p in (run / "generations").iterdir()] == [load_committed(run).generation]
            again.close()
            resumed += 1
    assert outcomes == {1, 2} and resumed >= 3
    loop.close()


def test_a_mixed_or_old_run_directory_is_refused_naming_the_file(tmp_path, il_dir):
    run = tmp_path / "run"
    loop = make_loop(run, il_dir)
    evaluator = load_checkpoint(il_dir, device="cpu")
    loop.commit(evaluator, rl_seconds=0.0)
    committed = load_committed(run)
    learner_json = committed.learner_dir / "learner.json"
    meta = json.loads(learner_json.read_text())
    learner_json.write_text(json.dumps({**meta, "generation": "000000-other"}))
    with pytest.raises(RunStateError, match=r"learner\.json: generation '000000-other', but .*run\.json expects"):
        load_committed(run)
    (run / "run_state.json").write_text(json.dumps({"counters": {}, "workers": {}}))
    with pytest.raises(RunStateError, match="written by an earlier webshop-rl .* start a new run"):
        load_committed(run)
    assert (run / RUN_ID_FILE).read_text().strip()
    loop.close()
