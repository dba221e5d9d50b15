"""cluster/manifests/serve_config.yaml deployed as `serve deploy` has the dashboard do it
(Serve started with the file's http_options, then the controller applies the config), on the
session's local Ray: new weights rolled out through user_config alone on the running
replicas, and a checkpoint that cannot be loaded leaving the old one serving."""

import shutil
import time
from pathlib import Path

import pytest
import requests
import yaml

from envs.generate import GeneratorConfig, write_catalog
from tests.cluster.serve.test_app import ACT, free_port, tiny_checkpoint

CONFIG = Path(__file__).resolve().parents[3] / "cluster" / "manifests" / "serve_config.yaml"


class Deployment:
    """serve_config.yaml with this machine's paths and port, deployed like `serve deploy`."""

    def __init__(self, root: Path, checkpoint: Path):
        from ray import serve

        self.config = yaml.safe_load(CONFIG.read_text())
        self.port = free_port()
        self.config["http_options"].update(host="127.0.0.1", port=self.port)
        app = self.config["applications"][0]
        catalog = write_catalog(GeneratorConfig(size=150, seed=4), root / "catalog")
        app["args"].update(checkpoint=str(checkpoint), catalog=str(catalog), num_cpus=0, poll_s=0.3)
        self.policy = app["deployments"][0]
        self.policy["autoscaling_config"].update(min_replicas=2, max_replicas=2)  # fixed: replica ids compared
        self.policy["user_config"] = {"checkpoint": str(checkpoint)}
        # what the dashboard does with the file `serve deploy` sends: start Serve, then apply it
        serve.start(http_options=self.config["http_options"], proxy_location=self.config["proxy_location"])

    def deploy(self, user_checkpoint: Path) -> None:
        from ray.serve.context import _get_global_client
        from ray.serve.schema import ServeDeploySchema

        self.policy["user_config"] = {"checkpoint": str(user_checkpoint)}
        _get_global_client().deploy_apps(ServeDeploySchema.model_validate(self.config))

    def status(self):
        """PolicyServer's status in `serve status` (None while the app is being built)."""
        from ray import serve

        app = serve.status().applications.get("webshop-rl")
        return app.deployments.get("PolicyServer") if app else None

    def healthy(self) -> bool:
        status = self.status()
        return status is not None and status.status == "HEALTHY"

    def replicas(self) -> dict[str, tuple]:
        """Running PolicyServer replicas: id -> (pid, start time)."""
        from ray.serve.context import _get_global_client

        details = _get_global_client().get_serve_details()["applications"]["webshop-rl"]
        return {r["replica_id"]: (r["pid"], r["start_time_s"])
                for r in details["deployments"]["PolicyServer"]["replicas"] if r["state"] == "RUNNING"}

    def served_versions(self, requests_count: int = 12) -> set:
        url = f"http://127.0.0.1:{self.port}/act"
        return {requests.post(url, json=ACT, timeout=60).json()["policy_version"] for _ in range(requests_count)}

    def wait(self, done, timeout_s: float = 90.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = done()
            if result:
                return result
            time.sleep(0.5)
        raise AssertionError(f"not done after {timeout_s}s: {self.status()}")


@pytest.fixture(scope="module")
def deployment(ray_local, tmp_path_factory):
    from ray import serve

    root = tmp_path_factory.mktemp("serve_deploy")
    deployment = Deployment(root, tiny_checkpoint(root / "ckpt_v3", 3))
    yield deployment, root
    serve.shutdown()


@pytest.mark.ray
def test_user_config_rolls_out_new_weights_on_the_running_replicas(deployment):
    d, root = deployment
    d.deploy(root / "ckpt_v3")
    d.wait(lambda: d.healthy() and len(d.replicas()) == 2)
    before = d.replicas()
    assert d.served_versions() == {3}

    v9 = tiny_checkpoint(root / "run_v9" / "checkpoint", 9, seed=1)
    d.deploy(v9.parent)  # a run directory: its checkpoint/ is served
    d.wait(lambda: d.healthy() and d.served_versions() == {9})
    assert d.replicas() == before  # the same replica actors, same processes: reconfigured, not restarted
    assert requests.get(f"http://127.0.0.1:{d.port}/version", timeout=30).json()["checkpoint"] == str(v9)

    broken = root / "ckpt_broken"
    shutil.copytree(v9, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    d.deploy(broken)
    status = d.wait(lambda: (s := d.status()).status not in ("HEALTHY", "UPDATING") and s)
    assert "ckpt_broken cannot be loaded" in status.message and "still serving" in status.message
    # Serve replaced the replica whose reconfigure raised and stopped the rollout: the
    # replicas left are original ones, serving the old weights
    assert d.replicas() and set(d.replicas()) <= set(before)
    assert d.served_versions() == {9}
    reload = requests.post(f"http://127.0.0.1:{d.port}/reload", json={}, timeout=30)
    assert reload.status_code == 403  # the shipped config keeps /reload off: rollouts never needed it
