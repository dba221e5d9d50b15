"""The Ray Serve app on the session's local Ray: two replicas, dynamic batching,
reload under load, a watched checkpoint directory; plus the builder and CLI wiring."""

import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydantic
import pytest
import requests

from cluster.cli import build_parser
from cluster.serve.app import CheckpointTarget, PolicyUserConfig, ServeArgs, app, deployment_options
from cluster.serve.core import RequestError
from envs.generate import GeneratorConfig, write_catalog
from policies.checkpoint import CheckpointMetadata, save_checkpoint
from policies.policy import Policy, PolicyConfig

ACT = {"instruction": "i need a pair of red running shoes, and price lower than 60.00 dollars",
       "available_actions": ["search[...]"]}


def tiny_checkpoint(directory: Path, version: int, seed: int = 0) -> Path:
    return save_checkpoint(Policy(PolicyConfig(model="tiny", seed=seed)), directory,
                           CheckpointMetadata(version=version))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_builder_and_cli_wiring(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "ckpt", 1)
    with pytest.raises(RequestError, match="not a policy checkpoint directory"):
        app({"checkpoint": str(tmp_path / "nope")})
    with pytest.raises(pydantic.ValidationError, match="replicaz"):
        app({"checkpoint": str(ckpt), "replicaz": "2"})
    built = app({"checkpoint": str(ckpt), "replicas": "2", "max_batch_size": "8"})  # serve run passes strings
    assert built is not None
    assert deployment_options(ServeArgs(checkpoint="x", replicas=2))["num_replicas"] == 2
    auto = deployment_options(ServeArgs(checkpoint="x", replicas=1, max_replicas=4))
    assert auto["autoscaling_config"]["max_replicas"] == 4 and "num_replicas" not in auto
    assert auto["ray_actor_options"]["num_cpus"] == 0  # shares a node with a training job
    args = build_parser().parse_args(["serve", "--checkpoint", str(ckpt), "--max-replicas", "3"])
    assert (args.host, args.port, args.replicas, args.max_replicas) == ("127.0.0.1", 8000, "auto", 3)
    assert build_parser().parse_args(["serve", "--checkpoint", "c", "--replicas", "2"]).replicas == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--checkpoint", "c", "--replicas", "0"])
    from cluster.serve.command import usable_cores

    assert usable_cores() == len(os.sched_getaffinity(0))
    assert not args.allow_reload and args.reload_root is None


def test_overload_bounds_and_reload_settings(tmp_path):
    from cluster.serve.app import start

    opts = deployment_options(ServeArgs(checkpoint="x"))
    assert (opts["max_ongoing_requests"], opts["max_queued_requests"]) == (256, 256)
    opts = deployment_options(ServeArgs(checkpoint="x", max_ongoing_requests=8, max_queued_requests=4))
    assert (opts["max_ongoing_requests"], opts["max_queued_requests"]) == (8, 4)
    assert ServeArgs(checkpoint="x").request_timeout_s == 60.0 and not ServeArgs(checkpoint="x").allow_reload
    with pytest.raises(pydantic.ValidationError, match="max_queued_requests"):
        ServeArgs(checkpoint="x", max_queued_requests=0)
    args = build_parser().parse_args(["serve", "--checkpoint", "c", "--allow-reload", "--reload-root", "runs",
                                      "--max-queued", "16", "--request-timeout", "5"])
    assert (args.allow_reload, str(args.reload_root), args.max_queued, args.request_timeout) == (True, "runs", 16, 5.0)
    secret = ServeArgs(checkpoint="x", reload_token="s3cret")
    assert "s3cret" not in repr(secret) and secret.reload_token.get_secret_value() == "s3cret"
    # reloads on beyond loopback without a token: refused before Ray starts
    with pytest.raises(ValueError, match="needs a reload token"):
        start(ServeArgs(checkpoint="x", allow_reload=True), host="0.0.0.0")
    ckpt = tiny_checkpoint(tmp_path / "run" / "ckpt", 1)
    built = app({"checkpoint": str(ckpt), "allow_reload": True})  # default root: the checkpoint's parent
    assert built is not None


def test_user_config_keys_and_rollout_generations():
    with pytest.raises(pydantic.ValidationError, match="weights"):
        PolicyUserConfig.model_validate({"checkpoint": "/runs/a", "weights": "/runs/b"})
    with pytest.raises(pydantic.ValidationError, match="checkpoint"):
        PolicyUserConfig.model_validate({})
    target = CheckpointTarget.func_or_class("/runs/a")
    assert target.configure("/runs/a") == {"checkpoint": "/runs/a", "generation": 0, "configured": "/runs/a"}
    assert target.configure("/runs/b")["generation"] == 1  # a new rollout moves the target once
    assert target.configure("/runs/b")["generation"] == 1  # ... not again for each replica
    assert target.set("/runs/c") == 2  # a /reload after it
    # a replica starting later with the same user_config does not undo the reload
    assert target.configure("/runs/b") == {"checkpoint": "/runs/c", "generation": 2, "configured": "/runs/b"}
    assert target.configure("/runs/a") == {"checkpoint": "/runs/a", "generation": 3, "configured": "/runs/a"}


@pytest.fixture(scope="module")
def deployed(ray_local, tmp_path_factory):
    from ray import serve

    from cluster.serve.app import start

    root = tmp_path_factory.mktemp("serve_ray")
    ckpt = tiny_checkpoint(root / "ckpt", 3)
    catalog = write_catalog(GeneratorConfig(size=150, seed=4), root / "catalog")
    port = free_port()
    # max_wait_s=0: these tests count every request answered; admission (503 by expected wait, which
    # depends on the machine's load) has its own tests in test_admission.py
    args = ServeArgs(checkpoint=str(ckpt), catalog=str(catalog), replicas=2, max_batch_size=16, max_wait_s=0,
                     poll_s=0.3, watch_s=0.5, threads=1, allow_reload=True, reload_root=str(root))
    start(args, host="127.0.0.1", port=port)
    yield f"http://127.0.0.1:{port}", root
    serve.shutdown()


@pytest.mark.ray
def test_act_episode_and_batching(deployed):
    url, _ = deployed
    v = requests.get(url + "/version", timeout=30).json()
    assert v["version"] == 3 and v["replicas"] == 2
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda _: requests.post(url + "/act", json=ACT, timeout=60), range(64)))
    assert all(r.status_code == 200 for r in results)
    sizes = [r.json()["batch_size"] for r in results]
    assert max(sizes) > 1, sizes  # concurrent requests shared forward passes
    assert {r.json()["action"] for r in results} <= {c["action"] for c in results[0].json()["candidates"]}
    ep = requests.post(url + "/episode", json={"goal_id": 4, "max_steps": 5}, timeout=60)
    assert ep.status_code == 200 and 1 <= ep.json()["num_steps"] <= 5
    bad = requests.post(url + "/act", json={**ACT, "available_actions": ["x" * 600]}, timeout=30)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:2] == ["body", "available_actions"]


def load(url: str, stop: threading.Event, log: list, max_requests: int = 400) -> None:
    """Send /act requests until `stop` (bounded in count); log (start, end, status, version)."""
    session = requests.Session()
    for _ in range(max_requests):
        if stop.is_set():
            return
        t0 = time.monotonic()
        try:
            r = session.post(url + "/act", json=ACT, timeout=60)
            log.append((t0, time.monotonic(), r.status_code, r.json().get("policy_version")))
        except Exception as e:  # counted as a failure
            log.append((t0, time.monotonic(), repr(e), None))


@pytest.mark.ray
def test_reload_under_load_fails_nothing(deployed):
    url, root = deployed
    new = tiny_checkpoint(root / "ckpt_v9", 9, seed=1)
    stop, log = threading.Event(), []
    threads = [threading.Thread(target=load, args=(url, stop, log)) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        r = requests.post(url + "/reload", json={"checkpoint": str(new)}, timeout=120)
        done_at = time.monotonic()
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 9 and r.json()["replicas"] == 2 and r.json()["replicas_updated"] == 2
    failures = [e for e in log if e[2] != 200]
    assert not failures and len(log) > 20, (failures[:5], len(log))
    assert {e[3] for e in log if e[1] < done_at - 0.5} <= {3, 9}
    after = [e[3] for e in log if e[0] > done_at]
    assert after and set(after) == {9}  # every replica serves the new version once /reload answered
    bad = requests.post(url + "/reload", json={"checkpoint": str(root)}, timeout=60)
    assert bad.status_code == 404 and requests.get(url + "/version", timeout=30).json()["version"] == 9


@pytest.mark.ray
def test_watched_checkpoint_directory_is_reloaded(deployed):
    url, root = deployed
    if not (root / "ckpt_v9").exists():  # run alone
        tiny_checkpoint(root / "ckpt_v9", 9, seed=1)
    requests.post(url + "/reload", json={"checkpoint": str(root / "ckpt_v9")}, timeout=120)
    tiny_checkpoint(root / "ckpt_v9", 12, seed=2)  # a training run re-saving in place
    deadline, seen = time.monotonic() + 30, set()
    while time.monotonic() < deadline:
        seen = {requests.post(url + "/act", json=ACT, timeout=60).json()["policy_version"] for _ in range(6)}
        if seen == {12}:
            break
        time.sleep(0.5)
    assert seen == {12}


HOSTILE = [  # (what, raw /act body, status): each kind of the adversarial load test once
    ("20,000 whitespace characters", json.dumps({"observation": ("Instruction: [SEP] red shoes" + " \t\n\u3000" * 5_000)
                                                 [:20_000], "available_actions": ["search[...]"]}).encode(), 200),
    ("5,000 candidates", json.dumps({"instruction": "mug", "available_actions":
                                     [f"click[b{i:09d}]" for i in range(5_000)]}).encode(), 422),
    ("JSON nested 10,000 deep", b'{"observation": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", 400),
    ("invalid UTF-8", b'{"instruction": "red \xc3\x28 shoes", "available_actions": ["search[...]"]}', 400),
    ("a body over 1 MB", b'{"observation": "' + b"x" * 1_100_000 + b'"}', 413),
]


@pytest.mark.ray
def test_hostile_requests_get_prompt_answers_through_the_proxy(deployed):
    url, root = deployed
    session = requests.Session()
    session.post(url + "/act", json=ACT, timeout=60)  # both replicas' first forward passes are not timed
    for what, body, status in HOSTILE:
        t0 = time.perf_counter()
        r = session.post(url + "/act", data=body, headers={"content-type": "application/json"}, timeout=30)
        elapsed = time.perf_counter() - t0
        assert r.status_code == status and elapsed < 2.0, (what, r.status_code, elapsed, r.text[:300])
        if status == 422:
            assert r.json()["detail"][0]["loc"][:2] == ["body", "available_actions"], r.text[:300]
        elif status != 200:
            assert r.json()["detail"][0]["loc"] == ["body"], (what, r.text[:300])
        assert session.get(url + "/healthz", timeout=10).status_code == 200  # the replica still answers
    r = session.post(url + "/reload", json={"checkpoint": "../" * 12 + "etc"}, timeout=30)  # outside the root
    assert r.status_code == 403 and "reload root" in r.text and str(root) not in r.text
