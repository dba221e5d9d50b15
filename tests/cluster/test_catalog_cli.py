"""`webshop-rl catalog prepare` builds the node's stored catalog and index, and a rule
rollout runs end to end on WebShop-format files through them."""

from __future__ import annotations

import json
from pathlib import Path

from cluster.cli import main as cli

from tests.conftest import FIXTURES


def test_prepare_then_rollout_on_webshop_format_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WEBSHOP_RL_CACHE", str(tmp_path / "cache"))
    assert cli(["catalog", "prepare", "--catalog", str(FIXTURES), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["num_products"], info["num_goals"], info["source"]) == (5, 4, str(FIXTURES))
    store, index = Path(info["store"]), Path(info["index"])
    assert store.parent == tmp_path / "cache" / "catalog-store" and (store / "products.arrow").exists()
    assert index.parent == tmp_path / "cache" / "search" and (index / "vocab.arrow").exists()
    assert info["store_bytes"] == sum(p.stat().st_size for p in store.iterdir()) > 0
    assert cli(["catalog", "prepare", "--catalog", str(FIXTURES)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"catalog {FIXTURES}: 5 products, 4 goals\n  store  {store} (")
    assert cli(["rollout", "--policy", "rule", "--catalog", str(FIXTURES), "--split", "train", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 2 and summary["bought_rate"] == 1.0 and summary["catalog"] == str(FIXTURES)
    assert sorted(p.name for p in (tmp_path / "cache" / "catalog-store").iterdir() if p.is_dir()) == \
        [store.name, "sources"]  # the rollout used the prepared store
