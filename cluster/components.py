"""What a run is built from, made from its config sections: the catalog, the device, a
policy of the configured preset, the learner's config and the Ray actors' runtime env.

The driver, both loops and the actor shells build their objects here, so a worker on
another node makes the same catalog and policy as the driver.
"""

from __future__ import annotations

import os

from cluster.data.sources import catalog_dir
from envs.catalog import Catalog
from envs.generate import load_catalog
from learner.learner import Learner
from policies.encoding_store import EncodingStore
from policies.policy import Policy, PolicyConfig, preset_config


def catalog_from_section(section) -> Catalog:
    """The catalog of a `catalog:` section: its directory, a fetched WebShop set (resolved
    on each node, under that node's data directory), or generated from its seed."""
    return load_catalog(catalog_dir(section.source, section.dir), section.size, section.seed, section.train_goals)


def resolve_device(device: str) -> str:
    """"auto" becomes "cuda" where torch sees a GPU, else "cpu"; other names pass through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def actor_runtime_env() -> dict:
    """The runtime env of the project's Ray actors: JAX kept on the CPU.

    `bm25s` runs a JAX op on import where JAX is installed, and JAX then opens its CUDA
    backend; in an actor Ray gave no GPU (CUDA_VISIBLE_DEVICES="") that raises and the
    actor dies. Nothing here uses JAX on the GPU, so it gets the CPU unless the user set
    JAX_PLATFORMS. Ray merges this with a job's env.
    """
    return {"env_vars": {"JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}}


def section_policy_config(section, seed: int = 0) -> PolicyConfig:
    """The `PolicyConfig` of the `policy:` section: its preset with the section's fields."""
    return preset_config(section.preset, device=resolve_device(section.device), seed=seed, **section.overrides())


def encoding_store(section) -> EncodingStore | None:
    """This machine's folder of frozen-layer encodings (`$WEBSHOP_RL_CACHE/encodings`),
    of the `policy:` section's size; None when `encoding_cache_gb` is 0."""
    if section.encoding_cache_gb <= 0:
        return None
    from envs.search import cache_root

    return EncodingStore(cache_root() / "encodings", int(section.encoding_cache_gb * 2**30))


def share_encodings(section, *policies: Policy) -> None:
    """Let `policies` share frozen-layer encodings through this machine's folder."""
    store = encoding_store(section)
    for policy in policies:
        policy.use_encoding_store(store)


def build_learner(cfg, policy: Policy, reference: Policy) -> Learner:
    """The run's `Learner`: its algorithm's section (`cfg.dpo` for --algo dpo, else
    `cfg.ppo`), the shared `optim` and `learner` sections, and the run's seed."""
    algorithm = cfg.dpo if cfg.run.algo == "dpo" else cfg.ppo
    return Learner(policy, reference, algorithm=algorithm, optim=cfg.optim, config=cfg.learner, seed=cfg.run.seed)
