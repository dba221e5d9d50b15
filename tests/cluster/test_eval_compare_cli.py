"""`webshop-rl eval` and `webshop-rl compare` on tiny random-BERT checkpoints."""

import json

import pytest

from cluster.cli import main as cli
from tests.conftest import FIXTURES

CATALOG = ["--catalog-size", "150", "--catalog-seed", "4"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    import torch

    from policies.checkpoint import save_checkpoint
    from policies.policy import Policy, PolicyConfig

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ckpts")
    paths = []
    for seed in (0, 1):
        policy = Policy(PolicyConfig(model="tiny", seed=seed))
        paths.append(str(save_checkpoint(policy, root / f"ckpt{seed}")))
    return paths


def test_eval_reports_intervals_for_every_figure(checkpoints, capsys):
    assert cli(["eval", "--checkpoint", checkpoints[0], *CATALOG, "--episodes", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["episodes"] == 8 and out["greedy"] is True and out["split"] == "test"
    for key in ("success_ci95", "score_ci95", "mean_steps_ci95"):
        assert out[key] is not None and out[key] >= 0
    for c in ("r_type", "r_att", "r_option", "r_price"):
        assert f"mean_{c}" in out and f"mean_{c}_ci95" in out
    assert 1 <= out["mean_steps"] <= 15


def test_eval_sampled_decoding_and_table(checkpoints, capsys):
    argv = ["eval", "--checkpoint", checkpoints[0], *CATALOG, "--episodes", "6", "--decoding", "sampled", "--seed", "3"]
    assert cli([*argv, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["greedy"] is False
    assert cli([*argv, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["score"] == first["score"]  # seeded sampling repeats
    assert cli(argv) == 0
    table = capsys.readouterr().out
    assert "sampled decoding" in table and "| success % |" in table and "| steps |" in table


def test_eval_on_webshop_format_files(checkpoints, capsys):
    assert cli(["eval", "--checkpoint", checkpoints[0], "--catalog", str(FIXTURES), "--split", "train",
                "--episodes", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["episodes"] == 2 and out["catalog"] == str(FIXTURES)


def test_compare_runs_to_the_budget_and_writes_a_png(checkpoints, tmp_path, capsys):
    png = tmp_path / "cmp.png"
    assert cli(["compare", *checkpoints, *CATALOG, "--budget", "12", "--out", str(png), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["episodes"] <= 12 and len(out["arms"]) == 2
    assert sum(a["episodes"] for a in out["arms"]) == out["episodes"]
    assert abs(sum(a["prob_best"] for a in out["arms"]) - 1) < 1e-6
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli(["compare", *checkpoints, *CATALOG, "--budget", "4", "--out", str(png)]) == 0
    text = capsys.readouterr().out
    assert "| arm | episodes | successes |" in text and "P(best" in text


def test_compare_needs_two_checkpoints(checkpoints, capsys):
    assert cli(["compare", checkpoints[0], *CATALOG]) == 2
    assert capsys.readouterr().err == "webshop-rl compare: error: compare needs at least two checkpoints, got 1\n"


def test_a_run_directory_resolves_to_the_runs_result(tmp_path):
    from cluster.run_state import RunStateError, result_checkpoint
    from cluster.serve.core import resolve_checkpoint

    run = tmp_path / "run"
    (run / "il" / "checkpoint").mkdir(parents=True)
    (run / "il" / "checkpoint" / "model.safetensors").write_bytes(b"")
    assert result_checkpoint(run) == run / "il" / "checkpoint"  # an --algo il run, or RL not committed yet
    for name in ("checkpoint", "best"):
        (run / name).mkdir(parents=True)
        (run / name / "model.safetensors").write_bytes(b"")
    assert result_checkpoint(run / "best") == run / "best"  # a checkpoint directory is itself
    assert result_checkpoint(run) == run / "checkpoint"  # no summary yet (a run in progress)
    (run / "summary.json").write_text(json.dumps({"after": {}, "last": {}, "selected": {"step": 3}}))
    assert result_checkpoint(run) == run / "best"  # the best evaluation's weights were the result
    (run / "best" / "config.json").write_text("{}")
    assert resolve_checkpoint(run) == (run / "best").resolve()  # Serve takes the same one
    (run / "summary.json").write_text(json.dumps({"after": {}}))
    assert result_checkpoint(run) == run / "checkpoint"  # the last weights were
    (run / "summary.json").write_text('{"after": ')  # torn
    with pytest.raises(RunStateError, match=r"summary\.json: not valid JSON"):
        result_checkpoint(run)
