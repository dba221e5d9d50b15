"""Small helpers shared by the driver, the loops and the actors."""

from __future__ import annotations

from learner.learner import Learner


def load_policy(path: str, device: str):
    from policies.checkpoint import load_checkpoint

    return load_checkpoint(path, device=device)


def build_learner(cfg, policy, reference) -> Learner:
    """The run's `Learner`: its algorithm's section (`cfg.dpo` for --algo dpo, else
    `cfg.ppo`), the shared `optim` and `learner` sections, and the run's seed."""
    algorithm = cfg.dpo if cfg.run.algo == "dpo" else cfg.ppo
    return Learner(policy, reference, algorithm=algorithm, optim=cfg.optim, config=cfg.learner, seed=cfg.run.seed)
