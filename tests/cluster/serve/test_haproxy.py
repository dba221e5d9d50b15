"""The app behind Ray Serve's HAProxy ingress (`RAY_SERVE_ENABLE_HA_PROXY=1`): HAProxy in
front, each replica answering HTTP itself. The switch must be set before Ray starts, so
the server runs in a process and Ray instance of its own."""

import csv
import importlib.util
import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from envs.generate import GeneratorConfig, write_catalog
from tests.cluster.serve.test_app import ACT, free_port, tiny_checkpoint

ROOT = Path(__file__).resolve().parents[3]
# the load test's server launcher: a process and Ray instance of its own, stderr kept
spec = importlib.util.spec_from_file_location("serve_load", ROOT / "bench" / "speed" / "serve_load.py")
serve_load = importlib.util.module_from_spec(spec)
spec.loader.exec_module(serve_load)


def haproxy_servers(stats_port: int, seconds: float = 10.0) -> list[tuple[str, str]]:
    """(backend, state) of each replica on HAProxy's stats page, once every one is UP or
    after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        table = requests.get(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=30).text.lstrip("# ")
        servers = [(r["pxname"], r["status"].split()[0]) for r in csv.DictReader(io.StringIO(table))
                   if r["svname"].startswith("SERVE_REPLICA")]
        if all(state == "UP" for _, state in servers) or time.monotonic() > deadline:
            return servers
        time.sleep(0.5)


@pytest.mark.ray
def test_act_batches_and_reload_behind_haproxy(tmp_path, monkeypatch):
    ckpt = tiny_checkpoint(tmp_path / "a", 3)
    tiny_checkpoint(tmp_path / "b", 5, seed=1)
    catalog = write_catalog(GeneratorConfig(size=150, seed=4), tmp_path / "catalog")
    port, stats = free_port(), free_port()
    args = {"checkpoint": str(ckpt), "catalog": str(catalog), "replicas": 2, "max_batch_size": 16,
            "max_wait_s": 0, "poll_s": 0.3, "threads": 1, "allow_reload": True, "reload_root": str(tmp_path)}
    monkeypatch.setenv("RAY_SERVE_ENABLE_HA_PROXY", "1")  # read by the server's Ray processes
    monkeypatch.setenv("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "1")  # a quick stop
    # HAProxy's stats and metrics ports, free ones beside any other HAProxy on the machine
    monkeypatch.setenv("RAY_SERVE_HAPROXY_STATS_PORT", str(stats))
    monkeypatch.setenv("RAY_SERVE_HAPROXY_METRICS_PORT", str(free_port()))
    with serve_load.Server(ROOT, args, port) as server:
        url = server.url
        assert requests.get(url + "/version", timeout=30).json()["replicas"] == 2
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda _: requests.post(url + "/act", json=ACT, timeout=60), range(64)))
        assert [r.status_code for r in answers] == [200] * 64
        assert max(r.json()["batch_size"] for r in answers) > 1  # concurrent requests shared forward passes
        assert {r.json()["policy_version"] for r in answers} == {3}

        reload = requests.post(url + "/reload", json={"checkpoint": "b"}, timeout=120)
        assert reload.status_code == 200, reload.text
        assert (reload.json()["version"], reload.json()["replicas_updated"]) == (5, 2)
        with ThreadPoolExecutor(8) as pool:
            after = list(pool.map(lambda _: requests.post(url + "/act", json=ACT, timeout=60), range(16)))
        assert {(r.status_code, r.json()["policy_version"]) for r in after} == {(200, 5)}
        # HAProxy fronts both replicas (not counted: its counters restart when Ray reloads its config,
        # and a server just reloaded may show a check or two in transition)
        assert haproxy_servers(stats) == [("http-webshop-rl", "UP")] * 2
        outside = requests.post(url + "/reload", json={"checkpoint": "/"}, timeout=30)
        assert outside.status_code == 403 and "reload root" in outside.text
