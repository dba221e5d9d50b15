"""The layout's rules hold (ARCHITECTURE.md): imports run envs -> policies ->
rollout_workers -> learner -> cluster, no import circles, Ray only under cluster/, and
no Python file over 400 lines. The checks are `bench/diagnostics/import_graph.py`'s."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph_tools():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "bench" / "diagnostics" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_imports_follow_the_package_order_without_circles(graph_tools):
    g = graph_tools.graph(ROOT)
    assert "learner.learner" in g and "cluster.train" in g  # the graph read the packages
    assert graph_tools.order_violations(g) == []
    assert graph_tools.circles(g) == []


def test_ray_only_under_cluster_and_short_files(graph_tools):
    assert graph_tools.ray_outside_cluster(ROOT) == []
    assert graph_tools.long_files(ROOT) == []


def test_the_checks_see_a_violation(graph_tools, tmp_path):
    for pkg in graph_tools.ORDER:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "envs" / "a.py").write_text("import ray\nfrom policies.b import x\n")
    (tmp_path / "policies" / "b.py").write_text("from envs import a\nx = 1\n" + "y = 2\n" * 400)
    g = graph_tools.graph(tmp_path)
    assert graph_tools.order_violations(g) == ["envs.a imports policies.b"]
    assert graph_tools.circles(g) == [["envs.a", "policies.b"]]
    assert graph_tools.ray_outside_cluster(tmp_path) == ["envs/a.py"]
    assert graph_tools.long_files(tmp_path) == ["policies/b.py (402 lines)"]
