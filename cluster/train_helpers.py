"""Small helpers shared by the driver, the loops and the actors."""

from __future__ import annotations

from learner.learner import LearnerConfig


def load_policy(path: str, device: str):
    from policies.checkpoint import load_checkpoint

    return load_checkpoint(path, device=device)


def learner_config(cfg) -> LearnerConfig:
    return LearnerConfig(**{"algo": cfg.run.algo, "seed": cfg.run.seed, **cfg.learner})
