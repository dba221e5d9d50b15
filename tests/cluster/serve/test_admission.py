"""Admission under overload: 503 with Retry-After, the pace a replica admits by, refusals
before the body is read (`cluster.serve.runner.BatchRunner`, `cluster.serve.api.Admission`)."""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from cluster.serve.core import ActItem, BatchRunner, Decision, LocalBackend, Overloaded
from tests.cluster.serve.test_api import live, server  # noqa: F401  (a fixture, used by name)


def test_overload_answers_503_with_retry_after(server):
    import asyncio

    _, catalog, ckpt, _ = server

    async def full():
        runner = BatchRunner(lambda items: [Decision(0, 0.0, 0.0, [1.0], 1, len(items)) for _ in items], 8,
                             max_waiting=2)
        runner.busy = True  # the model is busy: submissions wait
        first = asyncio.ensure_future(runner.submit([ActItem("a", ["x"]), ActItem("b", ["x"])]))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await runner.submit([ActItem("c", ["x"])])
        first.cancel()

    asyncio.run(full())
    backend = LocalBackend(ckpt, catalog, max_waiting=2)
    forward = backend.runner.run
    backend.runner.run = lambda items: (time.sleep(0.5), forward(items))[1]  # a slow model
    with live(backend) as url:
        with ThreadPoolExecutor(8) as pool:
            t0 = time.perf_counter()
            replies = list(pool.map(lambda _: requests.post(url + "/act", json=ACT_BODY, timeout=30), range(8)))
    codes = sorted(r.status_code for r in replies)
    assert 200 in codes and 503 in codes, codes
    for r in replies:
        if r.status_code == 503:
            assert r.headers["Retry-After"] == "1" and "overloaded" in r.text
    assert time.perf_counter() - t0 < 10


ACT_BODY = {"instruction": "i want a blue coffee mug", "available_actions": ["search[...]"]}


def test_admission_refuses_what_cannot_be_answered_in_time():
    """Hand-derived, no decay: A is in hand from t=0 to 1.0 and B from 0.5 to 1.2, so the
    pace is 1.0 busy s / 1 answer at t=1.0 and 1.2 s / 2 answers at t=1.2."""
    now = [0.0]
    runner = BatchRunner(lambda items: [], 8, max_wait_s=1.5, clock=lambda: now[0])
    runner.HALF_LIFE_S = float("inf")
    a = runner.admitted()
    a.__enter__()  # t=0: nothing in hand, always taken
    now[0] = 0.5
    b = runner.admitted()
    b.__enter__()  # no answer yet: nothing known, taken
    now[0] = 1.0
    a.__exit__(None, None, None)
    assert runner.expected_s() == pytest.approx((1 + 1) * 1.0)  # B in hand, then C: 2.0 s > 1.5
    with pytest.raises(Overloaded) as refused:
        runner.admitted().__enter__()
    assert refused.value.retry_after_s == 2 and runner.inside == 1  # the work in hand: 2.0 s
    now[0] = 1.2
    b.__exit__(None, None, None)
    assert runner.expected_s() == pytest.approx(1.2 / 2)
    d, e = runner.admitted(), runner.admitted()
    d.__enter__()
    e.__enter__()  # (1 + 1) * 0.6 = 1.2 s: taken
    with pytest.raises(Overloaded):
        runner.admitted().__enter__()  # (2 + 1) * 0.6 = 1.8 s
    assert runner.inside == 2
    # with the default half-life the pace forgets: 5 s later an answer counts half
    runner.HALF_LIFE_S = 5.0
    now[0] = 6.2
    runner._advance()
    assert runner._answered == pytest.approx(1.0) and runner._busy_s == pytest.approx(0.6 + 5.0)


def test_admission_expects_a_slower_pace_while_a_checkpoint_loads():
    """Hand-derived, no decay: one answer after 0.4 busy s, one request in hand, bound 1.0 s.
    A second is expected at (1 + 1) * 0.4 = 0.8 s: taken. While a load runs, (2 + 1) * 0.4 * 2
    = 2.4 s for a third, and even the second would have been 1.6 s: refused; after it, 1.2 s."""
    now = [0.0]
    runner = BatchRunner(lambda items: [], 8, max_wait_s=1.0, clock=lambda: now[0])
    runner.HALF_LIFE_S = float("inf")
    first = runner.admitted()
    first.__enter__()
    now[0] = 0.4
    first.__exit__(None, None, None)
    held = [runner.admitted()]  # kept: a dropped context manager would leave at once
    held[-1].__enter__()  # nothing else in hand: taken
    with runner.loading():
        assert runner.expected_s() == pytest.approx(2 * (1 + 1) * 0.4)
        with pytest.raises(Overloaded):
            runner.admitted().__enter__()
        with runner.loading():  # two loads at once slow it no further
            assert runner.expected_s() == pytest.approx(1.6)
        assert runner.expected_s() == pytest.approx(1.6)
    assert runner.expected_s() == pytest.approx((1 + 1) * 0.4) and runner.inside == 1
    held.append(runner.admitted())
    held[-1].__enter__()  # 0.8 s: taken
    with pytest.raises(Overloaded):
        runner.admitted().__enter__()  # (2 + 1) * 0.4 = 1.2 s
    assert runner.inside == 2


def test_retry_after_grows_with_the_refusals():
    """Hand-derived: one answer after 0.5 busy s (0.5 s a request), 2 in hand, the clock
    stopped. A refusal adds 1 to the decayed count; the refusal rate is that count times
    ln 2 / 5 s; the wait (2 in hand + its own + the rate) * 0.5 s, rounded up."""
    now = [0.0]
    runner = BatchRunner(lambda items: [], 8, max_wait_s=1.0, clock=lambda: now[0])
    first = runner.admitted()
    first.__enter__()
    now[0] = 0.5
    first.__exit__(None, None, None)
    held = [runner.admitted(), runner.admitted()]
    for h in held:
        h.__enter__()  # (0 + 1) * 0.5, then (1 + 1) * 0.5: taken
    waits = []
    for _ in range(40):
        with pytest.raises(Overloaded) as refused:
            runner.admitted().__enter__()  # (2 + 1) * 0.5 = 1.5 s > 1.0
        waits.append(refused.value.retry_after_s)
    rate = [n * math.log(2) / 5.0 for n in range(1, 41)]
    assert waits == [math.ceil((3 + r) * 0.5) for r in rate]
    assert waits[0] == 2 and waits[-1] == 5 and runner.inside == 2  # (3 + 0.14) * 0.5; (3 + 5.55) * 0.5 = 4.27
    runner.MAX_RETRY_AFTER_S = 3
    with pytest.raises(Overloaded) as refused:
        runner.admitted().__enter__()
    assert refused.value.retry_after_s == 3


def test_admitted_requests_stay_within_the_wait_bound_over_http(server):
    _, catalog, ckpt, _ = server
    backend = LocalBackend(ckpt, catalog, max_batch_size=1, max_wait_s=0.7)  # 0.25 s a pass: 2 in hand
    forward = backend.runner.run
    backend.runner.run = lambda items: (time.sleep(0.25 * len(items)), forward(items))[1]  # a slow model
    with live(backend) as url:
        assert requests.post(url + "/act", json=ACT_BODY, timeout=30).status_code == 200  # sets the pace

        def timed(_):
            t0 = time.perf_counter()
            r = requests.post(url + "/act", json=ACT_BODY, timeout=30)
            return r, time.perf_counter() - t0

        with ThreadPoolExecutor(10) as pool:
            replies = list(pool.map(timed, range(10)))
    ok = [dt for r, dt in replies if r.status_code == 200]
    refused = [(r, dt) for r, dt in replies if r.status_code == 503]
    assert len(ok) + len(refused) == 10 and 1 <= len(ok) <= 4 and refused, [r.status_code for r, _ in replies]
    assert max(ok) < 0.7 + 0.5  # the bound, one pass of slack for the estimate, HTTP
    for r, dt in refused:
        assert int(r.headers["Retry-After"]) >= 1 and "overloaded" in r.text and dt < 0.5


def test_a_refused_request_is_not_parsed(server):
    _, catalog, ckpt, _ = server
    backend = LocalBackend(ckpt, catalog, max_batch_size=1, max_wait_s=0.7)
    forward = backend.runner.run
    backend.runner.run = lambda items: (time.sleep(0.25 * len(items)), forward(items))[1]
    bad = {**ACT_BODY, "available_actions": 5}  # a 422 once parsed
    with live(backend) as url:
        assert requests.post(url + "/act", json=ACT_BODY, timeout=30).status_code == 200  # sets the pace
        with ThreadPoolExecutor(2) as pool:  # 2 in hand: a third expects (2 + 1) * 0.25 s > 0.7 s
            held = [pool.submit(requests.post, url + "/act", json=ACT_BODY, timeout=30) for _ in range(2)]
            deadline = time.monotonic() + 5
            while backend.runner.inside < 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            refused = requests.post(url + "/act", json=bad, timeout=30)
            assert [f.result().status_code for f in held] == [200, 200]
        parsed = requests.post(url + "/act", json=bad, timeout=30)
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1, refused.text
    assert parsed.status_code == 422 and "available_actions" in parsed.text
