"""The Serve app's HTTP API without Ray: the same FastAPI app around the in-process backend,
on a loopback uvicorn server (what `cluster.serve.app` deploys, minus batching and replicas)."""

import contextlib
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from cluster.serve.api import make_app
from cluster.serve.core import ActItem, BatchRunner, Decision, LocalBackend, act_batch
from cluster.serve.guard import ReloadGuard
from envs.catalog import Catalog
from envs.env import WebShopEnv
from envs.generate import GeneratorConfig, write_catalog
from policies.checkpoint import CheckpointMetadata, load_checkpoint, save_checkpoint
from policies.policy import Policy, PolicyConfig
from policies.candidates import build_candidates, policy_state


def tiny_checkpoint(directory: Path, version: int, seed: int = 0) -> Path:
    policy = Policy(PolicyConfig(model="tiny", seed=seed))
    return save_checkpoint(policy, directory, CheckpointMetadata(version=version))


@contextlib.contextmanager
def live(backend):
    """The app around `backend` on a loopback uvicorn server; yields its base url."""
    import uvicorn

    srv = uvicorn.Server(uvicorn.Config(make_app(backend), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{srv.servers[0].sockets[0].getsockname()[1]}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base url, catalog, checkpoint dir, reload root) of a live server on 127.0.0.1."""
    root = tmp_path_factory.mktemp("serve_api")
    ckpt = tiny_checkpoint(root / "ckpt", version=3)
    catalog = Catalog.from_dir(write_catalog(GeneratorConfig(size=150, seed=4), root / "catalog"))
    with live(LocalBackend(ckpt, catalog, reload_guard=ReloadGuard(True, root))) as url:
        yield url, catalog, ckpt, root


def post(url, path, body, timeout=60):
    return requests.post(url + path, json=body, timeout=timeout)


def field_of(response) -> list:
    return [tuple(d["loc"][1:2]) for d in response.json()["detail"]]


def test_health_version_docs(server):
    url, _, ckpt, _ = server
    assert requests.get(url + "/healthz", timeout=10).json() == {"status": "ok", "version": 3}
    v = requests.get(url + "/version", timeout=10).json()
    assert v["version"] == 3 and v["checkpoint"] == str(ckpt.resolve()) and v["model"] == "tiny"
    assert "swagger" in requests.get(url + "/docs", timeout=10).text.lower()
    spec = requests.get(url + "/openapi.json", timeout=10).json()
    assert {"/act", "/episode", "/reload", "/healthz", "/version", "/viewer"} <= set(spec["paths"])


def test_act_builds_candidates_and_state_like_the_rollout_workers(server):
    url, catalog, ckpt, _ = server
    env = WebShopEnv(catalog=catalog)
    obs, info = env.reset(options={"goal_id": 5})
    goal = env.session.goal.instruction_text
    # search page: the instruction comes from the observation; search[...] becomes query variants
    r = post(url, "/act", {"observation": obs, "available_actions": info["available_actions"]})
    assert r.status_code == 200, r.text
    expected = build_candidates(env, info["available_actions"])
    assert [c["text"] for c in r.json()["candidates"]] == expected.texts
    obs, *_, info = env.step(expected.actions[0])  # results page: asins become titles
    r = post(url, "/act", {"observation": obs, "instruction": goal, "available_actions": info["available_actions"]})
    expected = build_candidates(env, info["available_actions"])
    body = r.json()
    assert [c["text"] for c in body["candidates"]] == expected.texts
    assert [c["action"] for c in body["candidates"]] == expected.actions
    assert body["action"] == expected.actions[body["index"]] and body["policy_version"] == 3
    # same probabilities as the policy on the workers' state text (greedy = argmax)
    policy = load_checkpoint(ckpt)
    direct = act_batch(policy, [ActItem(policy_state(env, obs), expected.texts, True)])[0]
    assert body["index"] == direct.index
    assert [c["prob"] for c in body["candidates"]] == pytest.approx(direct.probs, abs=1e-6)
    # item page with an option chosen: "You have clicked ..." leads the state, as in policy_state
    obs, *_, info = env.step(next(a for a in info["available_actions"] if a.startswith("click[b")))
    option = next((a for a in info["available_actions"] if a not in
                   ("click[back to search]", "click[< prev]", "click[buy now]", "click[description]",
                    "click[features]", "click[reviews]")), None)
    if option is not None:
        obs, *_, info = env.step(option)
        r = post(url, "/act", {"observation": obs, "available_actions": info["available_actions"],
                               "clicked_options": list(env.session.options.values())})
        texts = build_candidates(env, info["available_actions"]).texts
        direct = act_batch(policy, [ActItem(policy_state(env, obs), texts, True)])[0]
        assert [c["prob"] for c in r.json()["candidates"]] == pytest.approx(direct.probs, abs=1e-6)


def test_limits_answer_4xx_naming_the_field(server):
    url, *_ = server
    ok = {"instruction": "red shoes", "available_actions": ["search[...]"]}
    cases = [
        ({**ok, "observation": "x" * 20_001}, ("observation",)),
        ({**ok, "instruction": "x" * 2_001}, ("instruction",)),
        ({**ok, "available_actions": ["click[a]"] * 257}, ("available_actions",)),
        ({**ok, "available_actions": ["click[" + "a" * 600 + "]"]}, ("available_actions",)),
        ({**ok, "available_actions": []}, ("available_actions",)),
        ({**ok, "clicked_options": ["red"] * 17}, ("clicked_options",)),
        ({**ok, "greedy": "yes"}, ("greedy",)),
        ({**ok, "colour": "red"}, ("colour",)),
        ({"available_actions": ["search[...]"]}, ("observation",)),
        ({**ok, "instruction": None}, ("instruction",)),
    ]
    for body, field in cases:
        r = post(url, "/act", body)
        assert r.status_code == 422, (body, r.text)
        assert field in field_of(r), (field, r.text)
        assert len(r.content) < 5_000  # the offending input is not echoed back
    for body, status, field in [({"goal_id": 1, "instruction": "mug"}, 422, ("goal_id",)),
                                ({}, 422, ("goal_id",)),
                                ({"goal_id": 10**6}, 404, ("goal_id",)),
                                ({"goal_id": "1"}, 422, ("goal_id",)),
                                ({"goal_id": 1, "max_steps": 51}, 422, ("max_steps",))]:
        r = post(url, "/episode", body)
        assert r.status_code == status and field in field_of(r), (body, r.text)
    r = requests.post(url + "/act", data=b"{" + b" " * 1_100_000 + b"}", timeout=30,
                      headers={"content-type": "application/json"})
    assert r.status_code == 413 and field_of(r) == [()]

    def chunks(n):  # no Content-Length: a streamed (chunked) body
        yield b'{"observation": "'
        for _ in range(n):
            yield b"x" * 4096
        yield b'", "available_actions": ["search[...]"]}'

    streamed = requests.post(url + "/act", data=chunks(300), timeout=30, headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    small = requests.post(url + "/act", data=chunks(1), timeout=30, headers={"content-type": "application/json"})
    assert small.status_code == 200, small.text


def test_unparsable_bodies_answer_400_saying_why(server):
    url, *_ = server
    json_type = {"content-type": "application/json"}
    bad_utf8 = b'{"instruction": "red \xff shoes", "available_actions": ["search[...]"]}'
    deep = b'{"observation": ' + b"[" * 10_000 + b"]" * 10_000 + b', "available_actions": ["search[...]"]}'
    for path, body, words in [("/act", bad_utf8, "not valid UTF-8 (byte 21)"), ("/episode", bad_utf8, "UTF-8"),
                              ("/act", deep, "nested too deeply"), ("/act", b"[" * 10_000, "nested too deeply")]:
        r = requests.post(url + path, data=body, headers=json_type, timeout=30)
        assert r.status_code == 400 and field_of(r) == [()] and words in r.json()["detail"][0]["msg"], r.text
    # nesting the parser takes is a value of the wrong type, named
    shallow = b'{"observation": ' + b"[" * 500 + b"]" * 500 + b', "available_actions": ["search[...]"]}'
    r = requests.post(url + "/act", data=shallow, headers=json_type, timeout=30)
    assert r.status_code == 422 and field_of(r) == [("observation",)], r.text
    assert requests.get(url + "/nope", timeout=30).status_code == 404  # other HTTP errors as before


def test_episode_on_a_goal_replays_to_the_same_reward(server):
    url, catalog, *_ = server
    r = post(url, "/episode", {"goal_id": 7, "max_steps": 6})
    assert r.status_code == 200, r.text
    ep = r.json()
    assert ep["goal_id"] == 7 and ep["graded"] == "goal" and 1 <= ep["num_steps"] <= 6
    assert ep["terminated"] or ep["truncated"]
    env = WebShopEnv(catalog=catalog, max_steps=6)
    obs, info = env.reset(options={"goal_id": 7})
    reward = 0.0
    for step in ep["steps"]:
        assert step["observation"] == obs
        assert sum(c["prob"] for c in step["candidates"]) == pytest.approx(1.0, abs=1e-4)
        assert step["candidates"][step["chosen"]]["action"] == step["action"]
        obs, reward, *_ = env.step(step["action"])
    assert ep["reward"] == (reward if ep["terminated"] else 0.0)


def test_free_instruction_episode_and_purchase_reward(server):
    url, *_ = server
    ep = post(url, "/episode", {"instruction": "i want a blue coffee mug, and price lower than 20.00 dollars",
                                "max_steps": 4, "greedy": False}).json()
    assert ep["graded"] == "free" and ep["goal_id"] is None and ep["num_steps"] <= 4
    assert ep["steps"][0]["page"] == "search"
    assert ep["steps"][0]["candidates"][0]["text"].startswith("search[i want a blue coffee mug")
    # a query can always be made, even from an instruction with no words
    assert post(url, "/act", {"instruction": "!!!", "available_actions": ["search[...]"]}).json()["action"] \
        == "search[!!!]"


def test_reload_swaps_the_checkpoint_and_refuses_bad_paths(server):
    url, _, ckpt, root = server
    run_dir = root / "run"
    tiny_checkpoint(run_dir / "checkpoint", version=8, seed=1)
    r = post(url, "/reload", {"checkpoint": str(run_dir)})  # a run directory works too
    assert r.status_code == 200 and r.json()["version"] == 8 and r.json()["generation"] == 1
    assert post(url, "/act", {"instruction": "mug", "available_actions": ["search[...]"]}).json()["policy_version"] == 8
    for bad in [str(root / "missing"), str(root), "\x00", "x" * 4000, "missing"]:
        r = post(url, "/reload", {"checkpoint": bad})
        assert r.status_code == 404 and field_of(r) == [("checkpoint",)], r.text
        assert str(root) not in r.text  # no server path in the answer
    assert requests.get(url + "/version", timeout=10).json()["version"] == 8  # nothing changed
    r = post(url, "/reload", {"checkpoint": str(ckpt)})
    assert r.json()["version"] == 3


@pytest.mark.slow
def test_openapi_fuzzing_finds_no_server_errors(server):
    """schemathesis over every operation, every check (server errors, status codes,
    content types, response schemas, schema-valid accepted / invalid rejected)."""
    url, *_ = server
    cli = Path(sys.executable).parent / "schemathesis"
    if not cli.exists():
        pytest.skip("schemathesis is not installed (pip install schemathesis)")
    out = subprocess.run([str(cli), "run", f"{url}/openapi.json", "--checks", "all", "--max-examples", "12",
                          "--seed", "7", "--request-timeout", "60", "--no-color"],
                         capture_output=True, text=True, timeout=600)
    summary = out.stdout[-3000:]
    assert out.returncode == 0, summary
    assert "Server error" not in out.stdout and " passed" in summary, summary


def test_concurrent_requests_share_forward_passes(server):
    url, *_ = server
    body = {"instruction": "i want a blue coffee mug", "available_actions": ["search[...]"]}
    alone = post(url, "/act", body).json()
    with ThreadPoolExecutor(16) as pool:
        replies = [r.json() for r in pool.map(lambda _: post(url, "/act", body), range(48))]
    assert max(r["batch_size"] for r in replies) > 1
    assert {r["action"] for r in replies} == {alone["action"]}  # greedy: batching changes nothing
    assert [c["prob"] for c in replies[-1]["candidates"]] == pytest.approx(
        [c["prob"] for c in alone["candidates"]], abs=1e-5)


def test_batch_runner_merges_waiting_batches_and_fails_them_together():
    import asyncio

    sizes = []

    def run(items):
        sizes.append(len(items))
        time.sleep(0.02)
        if any(i.state == "boom" for i in items):
            raise RuntimeError("forward failed")
        return [Decision(0, 0.0, 0.0, [1.0], 1, len(items)) for _ in items]

    async def scenario():
        runner = BatchRunner(run, max_items=8)
        lists = [[ActItem(f"s{k}", ["a"])] * 3 for k in range(6)]
        out = await asyncio.gather(*(runner.submit(x) for x in lists))
        assert [len(o) for o in out] == [3] * 6
        sizes_ok = sizes[:]
        bad = await asyncio.gather(runner.submit([ActItem("boom", ["a"])]), runner.submit([ActItem("x", ["a"])]),
                                   return_exceptions=True)
        return sizes_ok, bad

    sizes_ok, bad = asyncio.run(scenario())
    assert sizes_ok == [6, 6, 6]  # lists of 3 merged while waiting, capped at 8 items per pass
    assert all(isinstance(b, RuntimeError) for b in bad)  # the failing pass fails its requests, no hang


def test_reload_refusals_name_the_reason_and_no_path(server, tmp_path):
    url, catalog, ckpt, root = server
    outside = tiny_checkpoint(tmp_path / "elsewhere", version=5)
    (root / "link").symlink_to(outside.parent)  # a symlink out of the root is outside too
    for body in [{"checkpoint": str(outside)}, {"checkpoint": "../" * 8 + str(outside).lstrip("/")},
                 {"checkpoint": "link/elsewhere"}, {"checkpoint": "~/x"}]:
        r = post(url, "/reload", body)
        assert r.status_code in (403, 404) and field_of(r) == [("checkpoint",)], (body, r.text)
        assert str(tmp_path) not in r.text and str(root) not in r.text
        if body["checkpoint"] != "~/x":
            assert r.status_code == 403 and "not under this server's reload root" in r.text
    for data, ctype in [(b"", "text/plain"), (b'{"checkpoint": "ckpt"}', "text/plain"),
                        (b"checkpoint=ckpt", "application/x-www-form-urlencoded")]:
        r = requests.post(url + "/reload", data=data, headers={"content-type": ctype}, timeout=30)
        assert r.status_code == 415 and "Content-Type: application/json" in r.text, r.text
    r = requests.post(url + "/reload", data=b"", headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 422 and field_of(r) == [()], r.text  # an empty body is not {}
    r = post(url, "/reload", {"checkpoint": "ckpt"})  # relative to the root
    assert r.status_code == 200 and r.json()["version"] == 3
    off_backend = LocalBackend(ckpt, catalog)  # started without reloads
    with live(off_backend) as off:
        r = post(off, "/reload", {})
        assert r.status_code == 403 and "--allow-reload" in r.text
    with live(LocalBackend(ckpt, catalog, reload_guard=ReloadGuard(True, root, token="s3cret"))) as tok:
        for headers in [{}, {"Authorization": "Bearer nope"}, {"Authorization": "s3cret"}]:
            r = requests.post(tok + "/reload", json={}, headers=headers, timeout=30)
            assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer" and "token" in r.text
        r = requests.post(tok + "/reload", json={}, headers={"Authorization": "Bearer s3cret"}, timeout=30)
        assert r.status_code == 200 and r.json()["generation"] == 1
    with pytest.raises(Exception, match="only loopback clients"):
        ReloadGuard(True, root).authorize(None, "10.1.2.3")


WHITESPACE_ACT = {"observation": "WebShop [SEP] Instruction: [SEP] i want" + " " * 19_900 + "[SEP] Search",
                  "available_actions": ["search[...]", "click[buy now]"]}


def test_healthz_stays_fast_while_adversarial_acts_run(server):
    url, *_ = server
    start = time.perf_counter()
    r = post(url, "/act", {**WHITESPACE_ACT, "observation": "x" + " " * 19_998 + "y"})
    assert r.status_code == 200 and time.perf_counter() - start < 1.0
    r = post(url, "/act", WHITESPACE_ACT)
    assert r.status_code == 200 and r.json()["candidates"][0]["text"] == "search[i want]"
    stop, acts = threading.Event(), []

    def hammer():
        session = requests.Session()
        while not stop.is_set():
            t0 = time.perf_counter()
            acts.append((session.post(url + "/act", json=WHITESPACE_ACT, timeout=30).status_code,
                         time.perf_counter() - t0))

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        session, latencies = requests.Session(), []
        for _ in range(100):
            t0 = time.perf_counter()
            assert session.get(url + "/healthz", timeout=10).status_code == 200
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    latencies.sort()
    assert acts and all(code == 200 and dt < 1.0 for code, dt in acts), acts[:5]
    assert latencies[98] < 0.1, latencies[-5:]
