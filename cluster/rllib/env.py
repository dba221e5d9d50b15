"""`FixedShapeWebShopEnv`: WebShop as arrays, for RLlib and other array-based libraries.

`WebShopEnv` speaks text (observation strings, action strings). Array libraries
need fixed spaces, so this view shows each step as

    observation = {
        "state_ids":   (Ts,)    int64  token ids of the policy state, pad-filled
        "action_ids":  (K, Ta)  int64  token ids of each candidate action, pad-filled
        "action_mask": (K,)     int8   1 for the slots that hold a candidate
    }
    action = Discrete(K): the index of a candidate

The state and candidate texts are exactly the ones our rollout workers score:
`policies.candidates.policy_state` and `build_candidates`, tokenized as
`Policy` tokenizes them (truncated to `max_state_tokens` / `max_action_tokens`, with
[CLS]/[SEP]). So a model trained through this view acts on the same choices as the
project's own workers, and its checkpoints are interchangeable with theirs.

Choices that the fixed shape forces, on purpose:
- More than K candidates (never seen on the generated catalog, where pages offer at
  most ~23): the first K-1 are kept plus the last one, so an item page keeps its
  "buy now" button. `info["num_dropped"]` says how many were dropped.
- A masked (invalid) action index does not raise: it is WebShop's invalid action.
  The page does not change, the step counts towards `max_steps` (so an episode of
  invalid actions still truncates), the reward is `-invalid_action_penalty`
  (default 0) and `info["valid"]` is False. Gymnasium's `check_env` samples such
  actions; a masked policy never does.
- After the episode ends the mask is all zeros (the "done" page offers nothing).

This module is the one part of `envs/` that reads the layers above it (the
candidate builder and a tokenizer); `import envs` does not load it, and Ray is
imported only by `register_with_ray`.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from envs.catalog import Catalog
from envs.env import WebShopEnv
from policies.policy import PRESETS, PolicyConfig
from policies.candidates import Candidates, build_candidates, policy_state

GYM_ID = "WebShopFixedShape-v0"
RAY_ENV_NAME = "webshop_rl_fixed_shape"
INVALID_ACTION = "invalid[]"  # WebShopEnv treats anything unparseable as a no-op step


@dataclass(frozen=True)
class FixedShapeConfig:
    """How the text env is turned into arrays (RLlib passes this as `env_config`)."""

    tokenizer: str = "default"
    """Where the tokenizer comes from: a policy checkpoint directory, "default" (the
    shipped MiniLM), "tiny" (the tests' tiny BERT), or a local HF model path/name.
    Must be the tokenizer of the model that reads the observations."""
    catalog_dir: str | None = None
    """A WebShop-format catalog directory; None = the generated catalog below."""
    catalog_size: int = 1000
    """Generated catalog size."""
    catalog_seed: int = 0
    """Generated catalog seed."""
    catalog_train_goals: int = 0
    """Fresh generated training goals added to the train split (`envs.generate.load_catalog`)."""
    split: str = "train"
    """Goals drawn by `reset` when no goal id is given."""
    max_steps: int = 15
    """Actions before the episode is truncated."""
    max_candidates: int = 32
    """K: candidate slots (the size of the Discrete action space)."""
    max_state_tokens: int = PRESETS["cpu"]["max_state_tokens"]
    """Ts: state tokens kept; must equal the reading policy's `max_state_tokens`
    (this default is the CPU preset's)."""
    max_action_tokens: int = PolicyConfig.max_action_tokens
    """Ta: tokens kept of each candidate action; the policy's `max_action_tokens`."""
    invalid_action_penalty: float = 0.0
    """Reward of a masked action is minus this."""

    @classmethod
    def from_dict(cls, values: dict | None) -> "FixedShapeConfig":
        """From a plain dict (or RLlib's EnvContext); unknown keys are errors."""
        values = dict(values or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"env_config: unknown key(s) {unknown}; expected some of {sorted(names)}")
        return cls(**values)


@functools.lru_cache(maxsize=8)
def load_tokenizer(source: str):
    """The tokenizer named by `FixedShapeConfig.tokenizer`, loaded once per process."""
    from policies import encoder as enc

    if source == enc.TINY_MODEL:
        return enc.tiny_tokenizer()  # same vocabulary every time: the tiny model's
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(enc.resolve_model(source), local_files_only=True)


@functools.lru_cache(maxsize=4)
def _catalog(directory: str | None, size: int, seed: int, train_goals: int) -> Catalog:
    from envs.generate import load_catalog

    return load_catalog(directory, size, seed, train_goals)


def cap_candidates(cands: Candidates, k: int) -> tuple[Candidates, int]:
    """At most `k` candidates: the first k-1 and the last (see module doc)."""
    n = len(cands.texts)
    if n <= k:
        return cands, 0
    keep = [*range(k - 1), n - 1]
    return Candidates([cands.texts[i] for i in keep], [cands.actions[i] for i in keep]), n - k


class FixedShapeWebShopEnv(gym.Env):
    """`WebShopEnv` with a Dict observation of token ids and Discrete(K) actions.

    Args:
        config: a `FixedShapeConfig` or its dict (RLlib's `env_config`).
        catalog: a catalog to share instead of the configured one.
        tokenizer: a tokenizer to use instead of the configured one.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, config: FixedShapeConfig | dict | None = None, catalog: Catalog | None = None,
                 tokenizer: Any = None, render_mode: str | None = None):
        cfg = config if isinstance(config, FixedShapeConfig) else FixedShapeConfig.from_dict(config)
        if cfg.max_candidates < 2:
            raise ValueError(f"max_candidates must be >= 2, got {cfg.max_candidates}")
        self.config = cfg
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.tokenizer)
        self.pad_id = int(self.tokenizer.pad_token_id or 0)
        catalog = catalog if catalog is not None else _catalog(cfg.catalog_dir, cfg.catalog_size, cfg.catalog_seed,
                                                                  cfg.catalog_train_goals)
        self.env = WebShopEnv(catalog, max_steps=cfg.max_steps, split=cfg.split, render_mode=render_mode)
        self.render_mode = render_mode
        vocab = len(self.tokenizer)
        k, ts, ta = cfg.max_candidates, cfg.max_state_tokens, cfg.max_action_tokens
        self.observation_space = gym.spaces.Dict({
            "state_ids": gym.spaces.Box(0, vocab - 1, (ts,), np.int64),
            "action_ids": gym.spaces.Box(0, vocab - 1, (k, ta), np.int64),
            "action_mask": gym.spaces.Box(0, 1, (k,), np.int8),
        })
        self.action_space = gym.spaces.Discrete(k)
        self.candidates: Candidates = Candidates([], [])
        self.state_text = ""

    # -- gymnasium API -------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Start a session; `options` as `WebShopEnv.reset` ({"goal_id": i} or {"split": s})."""
        super().reset(seed=seed)
        # The inner env draws the goal; seed it from ours so an unseeded reset continues
        # this env's random stream (gymnasium's determinism contract).
        inner_seed = seed if seed is not None else int(self.np_random.integers(2**31))
        text, info = self.env.reset(seed=inner_seed, options=options)
        return self._observe(text, info)

    def step(self, action) -> tuple[dict, float, bool, bool, dict]:
        index = int(action)
        valid = 0 <= index < len(self.candidates.actions)
        text, reward, terminated, truncated, info = self.env.step(
            self.candidates.actions[index] if valid else INVALID_ACTION)
        if not valid:
            reward -= self.config.invalid_action_penalty
        obs, info = self._observe(text, info)
        return obs, float(reward), terminated, truncated, info

    def render(self) -> str | None:
        return self.env.render()

    # -- arrays --------------------------------------------------------------------
    def _observe(self, text: str, info: dict) -> tuple[dict, dict]:
        cfg = self.config
        cands = build_candidates(self.env, info["available_actions"])
        self.candidates, dropped = cap_candidates(cands, cfg.max_candidates)
        self.state_text = policy_state(self.env, text)
        obs = {
            "state_ids": self._token_ids([self.state_text], cfg.max_state_tokens)[0],
            "action_ids": np.full((cfg.max_candidates, cfg.max_action_tokens), self.pad_id, np.int64),
            "action_mask": np.zeros(cfg.max_candidates, np.int8),
        }
        n = len(self.candidates.texts)
        if n:
            obs["action_ids"][:n] = self._token_ids(self.candidates.texts, cfg.max_action_tokens)
            obs["action_mask"][:n] = 1
        info = {**info, "candidates": list(self.candidates.texts), "num_dropped": dropped}
        return obs, info

    def _token_ids(self, texts: list[str], width: int) -> np.ndarray:
        """(N, width) int64: each text tokenized as `Policy` does, then pad-filled."""
        ids = self.tokenizer(texts, truncation=True, max_length=width)["input_ids"]
        out = np.full((len(texts), width), self.pad_id, np.int64)
        for row, seq in enumerate(ids):
            out[row, :len(seq)] = seq
        return out


def register_with_gymnasium() -> None:
    """`gym.make("WebShopFixedShape-v0", config={...})`."""
    if GYM_ID not in gym.registry:
        gym.register(id=GYM_ID, entry_point="cluster.rllib.env:FixedShapeWebShopEnv")


def make_env(env_config: dict | None = None) -> FixedShapeWebShopEnv:
    """The env creator Ray's registry calls with RLlib's `env_config`."""
    return FixedShapeWebShopEnv(dict(env_config or {}))


def register_with_ray(name: str = RAY_ENV_NAME) -> str:
    """Register the env with Ray's env registry (`PPOConfig().environment(name)`)."""
    from ray.tune.registry import register_env

    register_env(name, make_env)
    return name


register_with_gymnasium()
