"""A server encodes its catalog's candidate texts before it serves (`prefill_catalog`):
every text but a search is ready, so a new page encodes only its state and queries."""

from __future__ import annotations

import asyncio

import pytest
import torch

import cluster.serve.core as core
import policies.frozen as frozen
from cluster.serve.core import ActItem, LocalBackend, act_candidates, act_state
from envs.agents import ExpertAgent, RandomAgent
from envs.catalog import Catalog
from envs.env import WebShopEnv
from envs.generate import GeneratorConfig, write_catalog
from policies.candidates import catalog_texts
from policies.checkpoint import CheckpointMetadata, save_checkpoint
from policies.encoding_store import EncodingStore
from policies.policy import Policy
from policies.search_queries import search_queries
from tests.policies.test_encoding_store import CPU_DESIGN


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return Catalog.from_dir(write_catalog(GeneratorConfig(size=120, seed=3), tmp_path_factory.mktemp("catalog")))


def page_requests(catalog: Catalog, goals: int) -> list[tuple[str, list[str], str]]:
    """(observation, available actions, instruction) of every step of expert and random
    episodes: result pages, item pages, sub pages, option clicks, next/prev."""
    env, out = WebShopEnv(catalog=catalog), []
    for n, goal in enumerate(catalog.goal_ids("train")[:goals]):
        agent = ExpertAgent(search_queries) if n % 2 == 0 else RandomAgent(seed=n)
        obs, info = env.reset(options={"goal_id": goal})
        agent.reset(env)
        for _ in range(15):
            out.append((obs, list(info["available_actions"]), env.session.goal.instruction_text))
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info))
            if terminated or truncated:
                break
    return out


def counted_encodes(monkeypatch) -> list[int]:
    """How many texts each canonical encoding pass computes, from now on."""
    encoded: list[int] = []
    canonical = frozen.encode_canonical

    def counting(encode, ids, *args, **kwargs):
        encoded.append(len(ids))
        return canonical(encode, ids, *args, **kwargs)

    monkeypatch.setattr(frozen, "encode_canonical", counting)
    return encoded


def act_all(backend: LocalBackend, items: list[ActItem]) -> list:
    async def run():
        return await asyncio.wait_for(asyncio.gather(*(backend.act(i) for i in items)), 60)

    return asyncio.run(run())


def test_catalog_texts_cover_every_candidate_but_searches(catalog):
    texts = set(catalog_texts(catalog))
    values = {v.lower() for vals in catalog.option_values.values() for v in vals}
    buttons = 4 + 4  # back to search, next >, < prev, buy now; four sub pages
    assert len(texts) == 4 * len(catalog.by_asin) + len(values) + buttons  # four budget notes per product
    shown = [t for obs, available, instruction in page_requests(catalog, 40)
             for t in act_candidates(catalog, available, instruction).texts]
    others = [t for t in shown if not t.startswith("search[")]
    assert any(t.startswith("click[item - ") for t in others) and len(set(others)) > 30
    assert set(others) <= texts


def test_a_prefilled_server_encodes_no_action_text_for_a_new_page(catalog, tmp_path, monkeypatch):
    policy = Policy(CPU_DESIGN)
    checkpoint = save_checkpoint(policy, tmp_path / "ckpt", CheckpointMetadata(version=1))
    monkeypatch.setenv("WEBSHOP_RL_CACHE", str(tmp_path / "cache"))
    encoded = counted_encodes(monkeypatch)
    backend = LocalBackend(checkpoint, catalog)
    assert sum(encoded) == len(catalog_texts(catalog))  # all at start, no state yet
    encoded.clear()
    pages = [p for p in page_requests(catalog, 6) if "search[...]" not in p[1]][:8]
    items = [ActItem(act_state(catalog, obs, instruction, available),
                     act_candidates(catalog, available, instruction).texts) for obs, available, instruction in pages]
    decisions = act_all(backend, items)
    assert len(decisions) == len(items)
    assert sum(encoded) == len({i.state for i in items})  # states only: every candidate was ready
    # the same decisions as a server that encodes each text as it comes
    monkeypatch.setattr(core, "PREFILL_MAX_TEXTS", 0)
    monkeypatch.setenv("WEBSHOP_RL_CACHE", str(tmp_path / "cache2"))
    plain = LocalBackend(checkpoint, catalog)
    again = act_all(plain, items)
    for a, b in zip(decisions, again):
        assert a.index == b.index and torch.allclose(torch.tensor(a.probs), torch.tensor(b.probs), atol=1e-6)


def test_a_reload_with_the_same_frozen_parts_reads_and_encodes_nothing(catalog, tmp_path, monkeypatch):
    """A run's later save (the trained layer moved, the frozen parts did not), loaded beside
    the served policy, takes over its caches: no prefill, no folder read, the pages seen
    before still ready; and it decides as the same checkpoint loaded afresh."""
    policy = Policy(CPU_DESIGN)
    first = save_checkpoint(policy, tmp_path / "v1", CheckpointMetadata(version=1))
    with torch.no_grad():
        policy.model.head.out.bias.add_(0.5)
        policy.model.encoder.encoder.layer[-1].output.dense.weight.mul_(1.1)  # the trained top layer
    second = save_checkpoint(policy, tmp_path / "v2", CheckpointMetadata(version=2))
    monkeypatch.setenv("WEBSHOP_RL_CACHE", str(tmp_path / "cache"))
    served = core.load_policy(first, catalog=catalog)
    pages = [p for p in page_requests(catalog, 6) if "search[...]" not in p[1]][:6]
    items = [ActItem(act_state(catalog, obs, instruction, available),
                     act_candidates(catalog, available, instruction).texts) for obs, available, instruction in pages]
    core.act_batch(served.policy, items)  # the pages' states are now in its cache

    encoded, reads, store_get = counted_encodes(monkeypatch), [], EncodingStore.get
    monkeypatch.setattr(EncodingStore, "get", lambda self, *a: reads.append(a) or store_get(self, *a))
    reloaded = core.load_policy(second, catalog=catalog, beside=served.policy)
    decisions = core.act_batch(reloaded.policy, items)
    assert (encoded, reads) == ([], [])
    assert reloaded.policy.version == 2

    fresh = core.load_policy(second, catalog=catalog)  # reads the folder: nothing shared
    assert reads and encoded == []
    for a, b in zip(decisions, core.act_batch(fresh.policy, items)):
        assert a.index == b.index and a.probs == pytest.approx(b.probs, abs=1e-6)


def test_a_reload_with_other_frozen_parts_shares_nothing_and_prefills(catalog, tmp_path, monkeypatch):
    policy = Policy(CPU_DESIGN)
    first = save_checkpoint(policy, tmp_path / "v1", CheckpointMetadata(version=1))
    with torch.no_grad():
        policy.model.action_encoder.embeddings.word_embeddings.weight.mul_(1.1)  # a frozen part
    second = save_checkpoint(policy, tmp_path / "v2", CheckpointMetadata(version=2))
    monkeypatch.setenv("WEBSHOP_RL_CACHE", str(tmp_path / "cache"))
    served = core.load_policy(first, catalog=catalog)
    encoded = counted_encodes(monkeypatch)
    reloaded = core.load_policy(second, catalog=catalog, beside=served.policy)
    assert sum(encoded) == len(catalog_texts(catalog))  # its own namespace, encoded afresh
    assert reloaded.policy.share_frozen_caches(served.policy) is False
