"""`webshop-rl data fetch` end to end against a local server, without network, and the
fetched directory as a catalog (`--catalog DIR`, `catalog.source: webshop-small`)."""

import hashlib
import json
import shutil
import socket
from dataclasses import replace

import pytest

from cluster.cli import main as cli
from cluster.components import catalog_from_section
from cluster.config import CatalogConfig, ConfigError, load_config
from cluster.data import sources
from tests.conftest import FIXTURES

DEMOS = FIXTURES.parent.parent / "rollout_workers" / "fixtures" / "il_trajs_fixture_catalog.jsonl"

SMALL = {"items_shuffle_1000.json": "items_shuffle_fixture.json", "items_ins_v2_1000.json": "items_ins_v2_fixture.json",
         "items_human_ins.json": "items_human_ins.json"}


def one_line_error(capsys, argv, *needles) -> str:
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def small_on_server(server, monkeypatch):
    """The fixture catalog served under the small set's names, their sha256 recorded as
    the project would record WebShop's."""
    pinned = []
    for f in sources.SETS["small"]:
        data = (FIXTURES / SMALL[f.name]).read_bytes()
        server.files["/" + f.name] = data
        pinned.append(replace(f, git_blob=None, sha256=hashlib.sha256(data).hexdigest()))
    monkeypatch.setitem(sources.SETS, "small", tuple(pinned))
    return server


def test_fetch_small_then_use_it_as_the_catalog(small_on_server, tmp_path, capsys):
    d = tmp_path / "small"
    assert cli(["data", "fetch", "--small", "--dir", str(d), "--mirror", small_on_server.url + "/"]) == 0
    out = capsys.readouterr().out
    assert "items_shuffle_1000.json: downloaded, 4,018 bytes, sha256" in out
    assert out.count("checksum matches the recorded one") == 3
    assert f"next:\n  webshop-rl rollout --policy rule --catalog {d} --episodes 100\n" \
           f"  webshop-rl train --set catalog.dir={d}" in out
    assert sorted(p.name for p in d.iterdir()) == ["SHA256SUMS", *sorted(SMALL)]
    assert cli(["rollout", "--policy", "rule", "--catalog", str(d), "--split", "train", "--episodes", "2",
                "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 2 and summary["catalog"] == str(d)
    assert cli(["data", "fetch", "--small", "--dir", str(d), "--mirror", small_on_server.url]) == 0
    assert capsys.readouterr().out.count("already there") == 3
    assert len(small_on_server.requests) == 3  # the rerun downloaded nothing


def test_without_network_one_line_names_files_and_place(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(sources.MIRROR_ENV, f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv(sources.DATA_ENV, str(tmp_path))
    err = one_line_error(capsys, ["data", "fetch", "--small", "--human-demos"], "cannot reach 127.0.0.1",
                         "without network, download items_shuffle_1000.json from http://127.0.0.1",
                         f"into {tmp_path / 'webshop-small'}; il_trajs_finalized_images.zip from ",
                         f"into {tmp_path / 'webshop-human-demos'}", "run this command again")
    assert err.startswith("webshop-rl data: error: ")


def test_fetch_usage_errors(capsys):
    one_line_error(capsys, ["data", "fetch"], "say what to fetch: --small, --full and/or --human-demos")
    one_line_error(capsys, ["data", "fetch", "--small", "--url", "nope.json=http://x"], "--url nope.json=http://x")
    one_line_error(capsys, ["data", "fetch", "--small", "--full", "--dir", "d"], "separate folders")


def test_catalog_source_reads_the_fetched_set(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(sources.DATA_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="catalog webshop-small: .* fetch it with `webshop-rl data fetch "
                                                "--small`"):
        catalog_from_section(CatalogConfig(source="webshop-small"))
    one_line_error(capsys, ["rollout", "--catalog", "webshop-small", "--episodes", "1"], "webshop-rl data fetch")
    d = tmp_path / "webshop-small"
    d.mkdir()
    for name, fixture in SMALL.items():
        shutil.copy(FIXTURES / fixture, d / name)
    catalog = catalog_from_section(CatalogConfig(source="webshop-small"))
    assert len(catalog) == 5 and len(catalog.goals) == 4 and catalog.source == str(d)
    assert cli(["rollout", "--policy", "rule", "--catalog", "webshop-small", "--episodes", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["catalog"] == str(d)


def test_catalog_section_checks_source_and_dir():
    assert load_config(overrides={"catalog": {"source": "webshop-full"}}).catalog.source == "webshop-full"
    assert CatalogConfig().source == "generated"  # what ships: no download
    with pytest.raises(ConfigError, match="source must be one of"):
        load_config(overrides={"catalog": {"source": "webshop"}}, source="--set")
    with pytest.raises(ConfigError, match="set source \\(webshop-small\\) or dir \\(x\\), not both"):
        load_config(overrides={"catalog": {"source": "webshop-small", "dir": "x"}})


def test_serve_finds_the_fetched_catalog_a_checkpoint_was_trained_on(tmp_path, monkeypatch):
    from cluster.serve.core import catalog_for

    monkeypatch.setenv(sources.DATA_ENV, str(tmp_path / "data"))
    d = tmp_path / "data" / "webshop-small"
    d.mkdir(parents=True)
    for name, fixture in SMALL.items():
        shutil.copy(FIXTURES / fixture, d / name)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "metadata.json").write_text(json.dumps({"train_config": {"catalog": {"source": "webshop-small",
                                                                                  "dir": None}}}))
    assert catalog_for(ckpt, None, None, None).source == str(d)
    assert catalog_for(ckpt, "webshop-small", None, None).source == str(d)


def test_data_demos_writes_the_replayed_trajectories(tmp_path, capsys):
    from rollout_workers.recording import read_trajectory_table

    out = tmp_path / "human.parquet"
    assert cli(["data", "demos", str(DEMOS), "--catalog", str(FIXTURES), "--out", str(out), "--split", "all"]) == 0
    text = capsys.readouterr().out
    assert "8 in the file; 5 replayed to their end, 2 cut" in text  # the eval and test goals kept too
    assert read_trajectory_table(out).num_rows == 7
    assert f"webshop-rl train --demos {out} --set catalog.dir={FIXTURES}" in text


def test_data_demos_in_a_catalog_without_the_human_goals_is_one_line(tmp_path, capsys):
    one_line_error(capsys, ["data", "demos", str(DEMOS), "--out", str(tmp_path / "h.parquet"),
                            "--products", str(FIXTURES / "items_shuffle_fixture.json"),
                            "--attributes", str(FIXTURES / "items_ins_v2_fixture.json")],
                   "none of its 8 human trajectories replays", "`webshop-rl data fetch --small` or `--full`")
    one_line_error(capsys, ["data", "demos", str(DEMOS), "--out", str(tmp_path / "h.parquet")],
                   "give the catalog to replay in")


def test_next_commands_name_the_catalog_the_demos_replay_in(tmp_path):
    from cluster.data.cli import next_commands

    demos = tmp_path / "d" / "il_trajs_finalized_images.jsonl"
    assert next_commands({"human-demos": tmp_path / "d"}, default_dirs=True) == [
        "webshop-rl data fetch --small   (the catalog to replay them in; or --full)",
        f"webshop-rl data demos {demos} --catalog webshop-small --out human_demos.parquet",
        f"webshop-rl train --demos {demos} --set catalog.source=webshop-small"]
    assert next_commands({"full": tmp_path / "f", "human-demos": tmp_path / "d"}, default_dirs=False)[-1] == \
        f"webshop-rl train --demos {demos} --set catalog.dir={tmp_path / 'f'}"
