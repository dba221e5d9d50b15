"""The run directory on disk: config.json written atomically and left alone by a resume
that changes nothing; the IL checkpoint counts as done only when wholly committed."""

from __future__ import annotations

from dataclasses import replace

from cluster.config import load_config, merge
from cluster.train import il_checkpoint, prepare_run_dir
from policies.checkpoint import CheckpointMetadata, save_checkpoint
from policies.policy import Policy, PolicyConfig


def _cfg(tmp_path, **run):
    return load_config(overrides=merge({"policy": {"model": "tiny"}}, {"run": {"out": str(tmp_path / "run"), **run}}))


def test_resume_rewrites_config_json_only_when_it_changes(tmp_path):
    cfg, out = prepare_run_dir(_cfg(tmp_path, updates=5))
    before = (out / "config.json").stat()
    resumed = replace(cfg, run=replace(cfg.run, resume=str(out)))
    prepare_run_dir(resumed)
    after = (out / "config.json").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    extended, _ = prepare_run_dir(replace(cfg, run=replace(cfg.run, resume=str(out), updates=9)))
    assert extended.run.updates == 9 and '"updates": 9' in (out / "config.json").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "run_id"]  # no temp file left
    assert len((out / "run_id").read_text().strip()) == 12


def test_il_checkpoint_is_done_only_when_committed(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    out = tmp_path / "run"
    calls = []
    monkeypatch.setattr("cluster.train.run_il", lambda *a, **k: calls.append(1) or {"checkpoint": "trained"})
    torn = out / "il" / "checkpoint"
    save_checkpoint(Policy(PolicyConfig(model="tiny")), torn)
    (torn / "config.json").unlink()  # as an in-place writer killed before its config.json
    assert il_checkpoint(cfg, None, out, print) == ("trained", None) and calls == [1]
    save_checkpoint(Policy(PolicyConfig(model="tiny")), torn)
    assert il_checkpoint(cfg, None, out, print) == (str(torn), None) and calls == [1]
    tested = {"episodes": cfg.run.final_eval_episodes, "success_rate": 0.25}
    save_checkpoint(Policy(PolicyConfig(model="tiny")), torn, CheckpointMetadata(metrics={"eval": tested}))
    assert il_checkpoint(cfg, None, out, print) == (str(torn), tested)  # its IL test, kept with it
    other = replace(cfg, run=replace(cfg.run, final_eval_episodes=7))
    assert il_checkpoint(other, None, out, print) == (str(torn), None)  # tested on other goals: test again
