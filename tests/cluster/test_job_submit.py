"""`ray job submit`, the way the README tells users: a real local head (with the
dashboard's job server and token authentication), a short training job submitted
with the CLI, its checkpoint and metrics checked, the head stopped."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).parent / "ray"
TRAIN_ARGS = ["--config", "cluster/configs/cpu.yaml", "--num-workers", "1", "--updates", "2", "--set",
              "policy.model=tiny", "il.num_demos=20", "il.epochs=1", "run.eval_episodes=2",
              "run.final_eval_episodes=4", "catalog.size=150", "worker.num_envs=2", "run.episodes_per_round=2",
              "dpo.pairs_per_update=2"]
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Head:
    """`ray start --head --block` in its own session; SIGTERM stops every process it started
    (unlike `ray stop`, which would stop every Ray instance on the machine)."""

    def __init__(self, log: Path, temp_dir: Path):
        gcs, dash, client, agent, agent_grpc, metrics, runtime_env = free_ports(7)
        self.dashboard = f"http://127.0.0.1:{dash}"
        # RAY_ADDRESS / RAY_API_SERVER_ADDRESS would override --address in `ray job submit`
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
        # a token of its own: a fresh machine has no ~/.ray/auth_token for `ray start` to read
        token = os.environ.get("RAY_AUTH_TOKEN") or uuid.uuid4().hex + uuid.uuid4().hex
        self.env = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
                    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
        cmd = [str(RAY), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(gcs),
               "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash), "--num-cpus", "2",
               "--ray-client-server-port", str(client), "--dashboard-agent-listen-port", str(agent),
               "--dashboard-agent-grpc-port", str(agent_grpc), "--metrics-export-port", str(metrics),
               "--runtime-env-agent-port", str(runtime_env), "--disable-usage-stats",
               # its own temp dir: `ray start` records itself as "the" local cluster there
               # (ray_current_cluster), and a SIGTERM leaves that behind for ray.init() to trip on
               "--temp-dir", str(temp_dir)]
        self.log = log.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True)

    def api(self, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.env['RAY_AUTH_TOKEN']}"}
        return requests.get(self.dashboard + path, headers=headers, timeout=10, **kw)

    def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "ray start exited; see the head log"
            try:
                if self.api("/api/version").status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"no job server at {self.dashboard} after {timeout_s}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group this test started
                self.proc.wait(timeout=30)
        self.log.close()


@pytest.mark.ray
@pytest.mark.slow
def test_ray_job_submit_trains_and_writes_a_checkpoint(tmp_path):
    if not RAY.exists():
        pytest.skip("the ray CLI is not next to this Python")
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths
    head = Head(tmp_path / "head.log", temp_dir)
    run_dir = tmp_path / "run"
    submission = f"webshop-rl-test-{uuid.uuid4().hex[:8]}"
    try:
        head.wait_ready()
        # token authentication is on: the job server refuses a request without the token
        assert requests.get(head.dashboard + "/api/version", timeout=10).status_code == 401
        submit = subprocess.run(
            [str(RAY), "job", "submit", "--address", head.dashboard, "--working-dir", str(REPO),
             # virtual environments and run outputs are not part of the package to ship
             "--runtime-env-json", json.dumps({"excludes": [".venv*", "runs", ".git", "*.egg-info"]}),
             "--submission-id", submission, "--no-wait", "--", "python", "-m", "cluster.train",
             "--out", str(run_dir), *TRAIN_ARGS],
            cwd=REPO, env=head.env, capture_output=True, text=True, timeout=180)
        assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
        deadline, status = time.monotonic() + 420, None
        while time.monotonic() < deadline:
            status = head.api(f"/api/jobs/{submission}").json()["status"]
            if status in TERMINAL:
                break
            time.sleep(2)
        logs = head.api(f"/api/jobs/{submission}/logs").json().get("logs", "")
        assert status == "SUCCEEDED", f"job {status}:\n{logs[-4000:]}"
    finally:
        if head.proc.poll() is None:
            try:
                requests.post(f"{head.dashboard}/api/jobs/{submission}/stop", timeout=10,
                              headers={"Authorization": f"Bearer {head.env['RAY_AUTH_TOKEN']}"})
            except requests.RequestException:
                pass
        head.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert head.proc.returncode is not None
    assert (run_dir / "checkpoint" / "model.safetensors").exists()
    meta = json.loads((run_dir / "checkpoint" / "metadata.json").read_text())
    assert meta["steps"] >= 2 and meta["train_config"]["policy"]["model"] == "tiny"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    tags = {r["tag"] for r in rows}
    assert {"learner", "test/final"} <= tags, tags
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["updates"] >= 2 and summary["after"]["episodes"] == 4
