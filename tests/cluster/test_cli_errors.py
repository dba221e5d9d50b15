"""User errors on the command line: one line naming what to fix, exit status 2, no traceback."""

import json
import subprocess
import sys

import pytest

from cluster.cli import main as cli
from tests.conftest import FIXTURES


def one_line_error(capsys, argv, *needles):
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"webshop-rl {argv[0]}: error: ")
    for n in needles:
        assert n in err, err
    return err


def bad_catalog(tmp_path):
    good = json.loads((FIXTURES / "items_shuffle_fixture.json").read_text())
    good[1]["full_description"] = ["not", "text"]
    (tmp_path / "items_shuffle.json").write_text(json.dumps(good))
    (tmp_path / "items_ins_v2.json").write_text((FIXTURES / "items_ins_v2_fixture.json").read_text())
    return tmp_path


def test_bad_catalog_file(tmp_path, capsys):
    cat = bad_catalog(tmp_path)
    one_line_error(capsys, ["rollout", "--catalog", str(cat), "--episodes", "1"],
                   str(cat / "items_shuffle.json"), "record 1", "field 'full_description'", "expected str, got list")
    one_line_error(capsys, ["play", "--catalog", str(tmp_path / "absent"), "--actions"], "no file matching")


def test_products_without_attributes(tmp_path, capsys):
    one_line_error(capsys, ["rollout", "--products", str(FIXTURES / "items_shuffle_fixture.json")],
                   "--products and --attributes go together")


def test_goal_id_out_of_range(capsys):
    from envs import Catalog

    n = len(Catalog.from_dir(FIXTURES).goals)
    one_line_error(capsys, ["play", "--catalog", str(FIXTURES), "--goal-id", str(n), "--actions"],
                   f"--goal-id {n} is out of range: this catalog's goals are 0 to {n - 1}")
    one_line_error(capsys, ["play", "--catalog", str(FIXTURES), "--goal-id", "-1", "--actions"], "--goal-id -1")


def test_missing_checkpoint_and_unknown_policy(tmp_path, capsys):
    one_line_error(capsys, ["eval", "--checkpoint", str(tmp_path / "nope"), "--catalog", str(FIXTURES)],
                   f"{tmp_path / 'nope'}: no such checkpoint directory")
    one_line_error(capsys, ["rollout", "--policy", str(tmp_path / "nope"), "--catalog", str(FIXTURES)],
                   f"--policy {tmp_path / 'nope'}: neither a checkpoint directory nor one of")


@pytest.mark.parametrize("argv, line", [
    (["eval", "--checkpoint", "x", "--episodes", "0"],
     "webshop-rl eval: error: argument --episodes: expected an integer >= 1, got 0"),
    (["catalog", "build", "--size", "-5", "--out", "x"],
     "webshop-rl catalog build: error: argument --size: expected an integer >= 1, got -5"),
    (["generate", "--episodes", "ten", "--out", "x"],
     "webshop-rl generate: error: argument --episodes: expected an integer, got 'ten'"),
    (["serve", "--checkpoint", "x", "--port", "-1"],
     "webshop-rl serve: error: argument --port: expected an integer >= 0, got -1"),
    (["rollout", "--no-such-flag"], "webshop-rl rollout: error: unrecognized arguments: --no-such-flag"),
    (["catalog", "prepare", "--size", "3"], "webshop-rl catalog prepare: error: unrecognized arguments: --size 3"),
    (["eval", "--checkpoint", "x", "--bogus"], "webshop-rl eval: error: unrecognized arguments: --bogus"),
])
def test_a_bad_flag_is_one_line_without_the_usage_block(argv, line, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == line + "\n"


def test_a_bad_train_flag_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli(["train", "--updates", "-3"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "webshop-rl train: error: argument --updates: expected an integer >= 1, got -3\n"


def test_serve_names_a_missing_checkpoint_before_starting_ray(tmp_path, capsys, monkeypatch):
    import cluster.serve.app as app

    started = []
    monkeypatch.setattr(app, "start", lambda *a, **k: started.append(a))
    one_line_error(capsys, ["serve", "--checkpoint", str(tmp_path / "nope")],
                   f"--checkpoint {tmp_path / 'nope'}: not a policy checkpoint directory (no config.json)")
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    one_line_error(capsys, ["serve", "--checkpoint", str(checkpoint), "--catalog", str(tmp_path / "none")],
                   f"{tmp_path / 'none'}: no file matching 'items_shuffle*.json'")
    assert started == []  # no Ray, no deployment


def test_train_names_a_missing_path_before_any_work(tmp_path, capsys):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("run: [1,\n")
    one_line_error(capsys, ["train", "--config", str(tmp_path / "none.yaml")],
                   f"{tmp_path / 'none.yaml'}: no such config file")
    one_line_error(capsys, ["train", "--config", str(bad_yaml)], f"{bad_yaml}: not valid YAML (")
    one_line_error(capsys, ["train", "--resume", str(tmp_path)],
                   f"--resume {tmp_path}: not a run directory (no config.json)")
    (tmp_path / "config.json").write_text("{")
    one_line_error(capsys, ["train", "--resume", str(tmp_path)], f"{tmp_path / 'config.json'}: not valid JSON: ")
    for flag, key in (("--il-checkpoint", "il.checkpoint"), ("--demos", "il.demos")):
        assert cli(["train", flag, str(tmp_path / "gone")]) == 2
        out, err = capsys.readouterr()
        assert err == f"webshop-rl train: error: {flag} ({key}) {tmp_path / 'gone'}: no such file or directory\n"
        assert "catalog:" not in out  # nothing was built first
    one_line_error(capsys, ["train", "--set", "policy.encoder_layers=7"],
                   "encoder_layers must be from 1 to 6 (the encoder's layer count), got 7")
    one_line_error(capsys, ["train", "--set", "policy.encoder_layers=0"], "policy.encoder_layers must be >= 1, got 0")
    one_layer = tmp_path / "one_layer"  # an encoder with fewer layers than the cpu preset keeps (2)
    from policies.encoder import tiny_encoder

    model, tokenizer = tiny_encoder(num_layers=1)
    model.save_pretrained(one_layer)
    tokenizer.save_pretrained(one_layer)
    capsys.readouterr()  # transformers' progress bar while saving
    one_line_error(capsys, ["train", "--set", f"policy.model={one_layer}"],
                   "encoder_layers must be from 1 to 1 (the encoder's layer count), got 2")
    one_line_error(capsys, ["report", str(tmp_path)], f"{tmp_path / 'config.json'}: not valid JSON: ")
    (tmp_path / "config.json").unlink()
    one_line_error(capsys, ["report", str(tmp_path)], f"{tmp_path}: neither metrics.jsonl nor summary.json")


def test_a_bug_still_shows_its_traceback(monkeypatch):
    import argparse

    import cluster.cli as cli_mod

    class Parser:  # a subcommand with a bug in it
        def parse_args(self, argv):
            return argparse.Namespace(func=lambda args: [][0])

    monkeypatch.setattr(cli_mod, "build_parser", Parser)
    with pytest.raises(IndexError):
        cli(["play"])


def test_the_console_command_exits_2(tmp_path):
    cat = bad_catalog(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "cluster.cli", "play", "--catalog", str(cat), "--actions"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("field 'full_description': expected str, got list")


def test_resuming_a_run_directory_from_an_earlier_version(tmp_path, capsys):
    from cluster.config import load_config

    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(load_config(overrides={"policy": {"model": "tiny"}}).to_dict(),
                                                default=str))
    (run / "run_state.json").write_text(json.dumps({"counters": {"updates": 3}, "workers": {}}))
    one_line_error(capsys, ["train", "--resume", str(run)], f"{run / 'run_state.json'}: written by an earlier",
                   "cannot be resumed exactly")


def test_resuming_a_run_whose_saved_config_has_a_key_this_version_lacks(tmp_path, capsys):
    from cluster.config import load_config

    run = tmp_path / "old"
    run.mkdir()
    saved = load_config(overrides={"policy": {"model": "tiny"}}).to_dict()
    saved["policy"]["int8_acting"] = False  # deleted since: an older release wrote it
    (run / "config.json").write_text(json.dumps(saved, default=str))
    one_line_error(capsys, ["train", "--resume", str(run)],
                   f"{run / 'config.json'}: unknown key 'policy.int8_acting'; expected one of preset, model")


def test_a_new_run_into_the_working_directory_holding_one_is_refused(tmp_path, capsys, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, ["train", "--out", "."], "--out . holds an earlier run (config.json)", "--resume .")
    assert (tmp_path / "config.json").read_text() == "{}"


@pytest.mark.parametrize("argv, needle", [
    (["--resume", "runs/x"], "--resume is not supported with --algo rllib-ppo"),
    (["--set", "ppo.kl_coef=0.1"], "--algo rllib-ppo: ppo.kl_coef (KL to the IL reference) has no RLlib counterpart"),
])
def test_what_rllib_ppo_cannot_do_is_refused_before_any_work(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, ["train", "--algo", "rllib-ppo", *argv], needle)
    assert list(tmp_path.iterdir()) == []  # no run directory, no IL
