"""The learner's typed config sections; every default is what `webshop-rl train` ships.

`OptimConfig` (AdamW and the LR schedule) and `LearnerConfig` (forward-pass and cache
sizes) are shared; `DPOConfig` and `PPOConfig` each hold one algorithm's settings,
including its own learning rate and staleness bound, and the type of the section a
`Learner` is given decides which algorithm it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from learner.preference_losses import PREFERENCE_LOSSES
from policies.config import check_at_least, check_positive

LR_SCHEDULES = ("constant", "constant_with_warmup", "linear", "cosine")
DPO_SCOPES = ("trajectory", "step")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW and the LR schedule (`transformers.get_scheduler`); the peak LR is the
    algorithm section's `lr`."""

    weight_decay: float = 0.01
    """AdamW decoupled weight decay."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global L2 norm before every optimizer step."""
    lr_schedule: str = "constant"
    """A `transformers.get_scheduler` name: "constant", "constant_with_warmup", "linear"
    or "cosine" (the last two decay to 0 at total_updates). The schedule advances once
    per update."""
    warmup_updates: int = 0
    """LR rises linearly from 0: update k (0-based) of the warm-up uses lr * k / warmup
    (transformers' warm-up; needs a schedule other than "constant")."""
    total_updates: int = 0
    """Length of the schedule in updates ("linear" / "cosine": > warmup_updates)."""

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"optim.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        check_positive("optim", self, "max_grad_norm")
        check_at_least("optim", self, 0, "warmup_updates", "total_updates", "weight_decay")
        if self.lr_schedule == "constant" and self.warmup_updates:
            raise ValueError("optim.warmup_updates needs lr_schedule 'constant_with_warmup', 'linear' or "
                             "'cosine' (the 'constant' schedule has no warm-up)")
        if self.lr_schedule in ("linear", "cosine") and self.total_updates <= self.warmup_updates:
            raise ValueError(f"optim.lr_schedule={self.lr_schedule!r} needs total_updates > warmup_updates "
                             f"({self.total_updates} <= {self.warmup_updates})")


@dataclass(frozen=True)
class LearnerConfig:
    """Settings of the learner shared by DPO and PPO."""

    max_steps_per_forward: int = 64
    """Steps per `Policy.evaluate` call; bounds the activations of one forward pass."""
    ref_cache_size: int = 100_000
    """Trajectories whose reference log-probs are kept (least recently used evicted)."""
    state_cache_size: int = 2048
    """States whose frozen lower-layer outputs the trained policy keeps (`Policy.set_state_cache`;
    ~100 KB each for 128 MiniLM tokens in bf16): pairs sampled again and PPO epochs then
    run only the trainable top. No effect when every layer trains."""

    num_learners: int = 1
    """Learner processes training one set of weights on Ray (`learner.group`: one
    torch.distributed process group, NCCL on GPUs, gloo on CPU, one GPU each where the
    cluster has them): each takes 1/N of every update's pairs or steps, their gradients
    are summed, rank 0 publishes the weights and writes the checkpoints. 1 = one
    learner, no process group."""

    def __post_init__(self) -> None:
        check_at_least("learner", self, 1, "max_steps_per_forward", "ref_cache_size", "num_learners")
        check_at_least("learner", self, 0, "state_cache_size")


@dataclass(frozen=True)
class DPOConfig:
    """DPO (Rafailov et al. 2023) on preference pairs against the frozen IL reference."""

    lr: float = 3e-5
    """Peak AdamW learning rate."""
    max_version_lag: int = 50
    """Staleness S: an update samples only pairs whose halves both have policy version
    >= version - S (pairs are reused across updates, as DPO trains for epochs)."""
    pairs_per_update: int = 8
    """Preference pairs per update (one optimizer step)."""
    beta: float = 0.5
    """DPO beta: strength of the implicit KL penalty towards the reference."""
    preference_loss: str = "sigmoid"
    """Entry of `PREFERENCE_LOSSES`: "sigmoid" (DPO), "cdpo", "ipo"."""
    label_smoothing: float = 0.0
    """cDPO's label-flip probability (only the "cdpo" loss accepts a non-zero value)."""
    scope: str = "step"
    """What a pair compares (`learner.dpo.SCOPES`): "step" (the one decision where the
    pair parts from a shared state: both actions scored from one evaluation of that
    state, the reference likewise; pairs that never part are left out) or "trajectory"
    (log-probs summed over every step, as the seed compares them)."""
    sft_coef: float = 2.0
    """Weight of an NLL term on the chosen side: the chosen action where the pair parts
    ("step"), else the mean per-step NLL of the chosen trajectory; 0 = off."""
    anchor_states: int = 16
    """States per update drawn from the newest policy trajectories, where the exact
    KL(pi || reference) over all candidates is added with weight kl_coef ("step" scope
    only; 0 = off). Step pairs move only the two actions they compare; the anchor holds
    the probability they free elsewhere where the reference had it."""
    kl_coef: float = 2.0
    """Weight of the anchor KL."""

    def __post_init__(self) -> None:
        if self.preference_loss not in PREFERENCE_LOSSES:
            raise ValueError(f"dpo.preference_loss: unknown {self.preference_loss!r}; "
                             f"choose one of {sorted(PREFERENCE_LOSSES)}")
        if self.scope not in DPO_SCOPES:
            raise ValueError(f"dpo.scope must be one of {DPO_SCOPES}, got {self.scope!r}")
        check_positive("dpo", self, "lr", "beta")
        check_at_least("dpo", self, 1, "pairs_per_update")
        check_at_least("dpo", self, 0, "max_version_lag", "anchor_states", "sft_coef", "kl_coef")
        if not 0 <= self.label_smoothing < 0.5:
            raise ValueError(f"dpo.label_smoothing must be in [0, 0.5), got {self.label_smoothing!r}")
        if self.anchor_states and (self.scope != "step" or self.kl_coef <= 0):
            raise ValueError("dpo.anchor_states needs scope='step' and kl_coef > 0 "
                             f"(got scope={self.scope!r}, kl_coef={self.kl_coef})")


@dataclass(frozen=True)
class PPOConfig:
    """Decoupled PPO (Hilton et al. 2021) on the newest unused policy trajectories."""

    lr: float = 5e-5
    """Peak AdamW learning rate."""
    max_version_lag: int = 4
    """Staleness S: an update takes only trajectories of policy version >= version - S."""
    trajectories_per_update: int = 16
    """Newest unused policy trajectories one update consumes (each is used once)."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_coef: float = 0.2
    """PPO clip epsilon of the ratio pi / pi_prox."""
    value_coef: float = 0.5
    """Weight of the value loss."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus."""
    kl_coef: float = 0.0
    """Weight of the k3 KL(pi || reference) penalty on the taken actions; > 0 needs a
    reference policy."""
    ppo_epochs: int = 4
    """Passes over the update's steps."""
    minibatch_size: int = 64
    """Steps per optimizer step (split into forward chunks of max_steps_per_forward)."""
    is_clip: float = 2.0
    """Truncation of the behaviour weight pi_prox / pi_behaviour (inf = none)."""
    normalize_advantages: bool = True
    """Standardise advantages over all steps of the update (before the behaviour weight)."""

    def __post_init__(self) -> None:
        check_positive("ppo", self, "lr", "clip_coef", "is_clip")
        check_at_least("ppo", self, 1, "trajectories_per_update", "ppo_epochs", "minibatch_size")
        check_at_least("ppo", self, 0, "max_version_lag", "value_coef", "entropy_coef", "kl_coef")
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError(f"ppo.gamma must be in (0, 1] and ppo.gae_lambda in [0, 1], "
                             f"got {self.gamma!r} and {self.gae_lambda!r}")
