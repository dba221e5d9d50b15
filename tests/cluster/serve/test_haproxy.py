"""The app behind Ray Serve's HAProxy ingress (`RAY_SERVE_ENABLE_HA_PROXY=1`): HAProxy in
front, each replica answering HTTP itself. The switch must be set before Ray starts, so
the server runs in a process and Ray instance of its own."""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from envs.generate import GeneratorConfig, write_catalog
from tests.cluster.serve.test_app import ACT, free_port, tiny_checkpoint

ROOT = Path(__file__).resolve().parents[3]

SERVER = """
import json, signal, sys, threading
import ray
from ray import serve
from cluster.serve.app import ServeArgs, start
cfg = json.loads(sys.argv[1])
start(ServeArgs(**cfg["args"]), host="127.0.0.1", port=cfg["port"])
print("READY", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
serve.shutdown()
ray.shutdown()
"""


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
def test_act_batches_and_reload_behind_haproxy(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "a", 3)
    tiny_checkpoint(tmp_path / "b", 5, seed=1)
    catalog = write_catalog(GeneratorConfig(size=150, seed=4), tmp_path / "catalog")
    port, stats = free_port(), free_port()
    args = {"checkpoint": str(ckpt), "catalog": str(catalog), "replicas": 2, "max_batch_size": 16,
            "max_wait_s": 0, "poll_s": 0.3, "threads": 1, "allow_reload": True, "reload_root": str(tmp_path)}
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_SERVE_ENABLE_HA_PROXY="1", PYTHONPATH=str(ROOT), WEBSHOP_RL_CACHE=str(tmp_path / "cache"),
               RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S="1",  # a quick stop
               # HAProxy's stats and metrics ports, free ones beside any other HAProxy on the machine
               RAY_SERVE_HAPROXY_STATS_PORT=str(stats), RAY_SERVE_HAPROXY_METRICS_PORT=str(free_port()))
    log = tmp_path / "server.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", SERVER, json.dumps({"args": args, "port": port})], cwd=ROOT,
                                env=env, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
    try:
        started = proc.stdout.readline().startswith("READY")
        assert started, f"the server did not start (exit {proc.poll()}): {log.read_text()[-3000:]}"
        url = f"http://127.0.0.1:{port}"
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
    finally:
        proc.terminate()  # Serve stops HAProxy and the replicas, then Ray
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
