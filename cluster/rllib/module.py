"""`WebShopRLModule`: the project's `ActionScorer` as an RLlib `TorchRLModule`.

RLlib (new API stack) trains this module on `cluster.rllib.env.FixedShapeWebShopEnv`
observations: state token ids (B, Ts), candidate token ids (B, K, Ta) and an action
mask (B, K). The network is the project's own `ActionScorer` (encoder, bi-attention
head, value head), held as `self.scorer`, so its state dict is a checkpoint's state
dict with a "scorer." prefix and weights move both ways:

- `load_project_checkpoint(module, dir)` / model_config {"checkpoint": dir}: a
  project checkpoint (policies.checkpoint) initialises the module;
- `export_project_checkpoint(module, dir)`: the module's weights as a project
  checkpoint, which `load_checkpoint` and `webshop-rl eval --checkpoint` read.

Masked slots get the logit `finfo.min`, as in `Policy` (probability 0, entropy and
KL stay finite). The value is the value head on the state's [CLS] token, which the
forward pass returns as RLlib's EMBEDDINGS so PPO's value loss reuses that encoding.

What this module does not do, on purpose: it has no action-encoding cache and no
de-duplication of repeated candidate strings (the `Policy` levers), so RLlib runs
the same architecture the way an RLlib user would. Candidates are encoded only in
their real slots, padded to the batch's longest real sequence.

This is the adapter between RLlib and `policies`; it is the one module in
`policies/` that imports Ray (`import policies` does not load it).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from policies.checkpoint import CheckpointMetadata, load_checkpoint, save_checkpoint
from policies.policy import Policy, PolicyConfig, bf16_native

PREFIX = "scorer."  # module state dict = checkpoint state dict under this prefix


def policy_from_model_config(model_config: dict | None) -> Policy:
    """The policy a module is built from (on the CPU; RLlib moves the module later).

    model_config:
        "checkpoint": a project checkpoint directory (weights, PolicyConfig, tokenizer);
        "policy": PolicyConfig fields; with a checkpoint, overrides of its fields
            (e.g. trainable_top_layers), else the config of a fresh model.
    """
    cfg = dict(model_config or {})  # other keys are RLlib's own (PPO adds vf_share_layers)
    fields = dict(cfg.get("policy") or {})
    fields["device"] = "cpu"
    if cfg.get("checkpoint"):
        return load_checkpoint(cfg["checkpoint"], **fields)
    return Policy(PolicyConfig(**fields))


class WebShopRLModule(TorchRLModule, ValueFunctionAPI):
    """RLlib module over `FixedShapeWebShopEnv` observations (see module doc)."""

    def setup(self) -> None:
        policy = policy_from_model_config(self.model_config)
        self.scorer = policy.model.train()  # ActionScorer; a registered submodule
        self.policy_config: PolicyConfig = policy.config
        self.tokenizer = policy.tokenizer
        self.pad_id = int(policy.tokenizer.pad_token_id or 0)
        self.policy_version = policy.version

    # -- RLlib forward passes ------------------------------------------------------
    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        logits, _ = self.logits_and_embeddings(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: logits}

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        logits, cls = self.logits_and_embeddings(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: logits, Columns.EMBEDDINGS: cls}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        """State values (B,): the value head on the [CLS] state; encodes the states only
        when `embeddings` (the [CLS] states of `_forward_train`) are not given."""
        if embeddings is None:
            with self._autocast():
                state_h, _ = self._encode_states(batch[Columns.OBS]["state_ids"])
            embeddings = state_h[:, 0]  # (B, D)
        with self._autocast():
            values = self.scorer.value_head(embeddings).squeeze(-1)
        return values.float()  # (B,)

    # -- the network -----------------------------------------------------------------
    def logits_and_embeddings(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked logits (B, K) float32 and [CLS] state encodings (B, D)."""
        with self._autocast():
            state_h, state_mask = self._encode_states(obs["state_ids"])
            cand_mask = obs["action_mask"].bool()  # (B, K)
            act_h, act_mask = self._encode_candidates(obs["action_ids"], cand_mask)
            logits, _ = self.scorer.score(act_h, act_mask, cand_mask, state_h, state_mask)
        return logits.float(), state_h[:, 0]

    def _encode_states(self, state_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states (B, T, D), zero past each state's end, and the mask (B, T) bool,
        T = the batch's longest state."""
        ids, mask = _trim(state_ids.long(), self.pad_id)  # (B, T)
        hidden = self.scorer.encode_states(ids, mask.long())  # (B, T, D)
        return hidden * mask[..., None].to(hidden.dtype), mask

    def _encode_candidates(self, action_ids: torch.Tensor, cand_mask: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states (B, K, T, D) of the real candidate slots (zeros elsewhere) and the
        token mask (B, K, T) bool, T = the longest real candidate."""
        B, K, _ = action_ids.shape
        ids, mask = _trim(action_ids.long()[cand_mask], self.pad_id)  # (N, T) over real slots
        dim = self.scorer.dim
        if ids.shape[0] == 0:  # nothing to choose anywhere (e.g. only final observations)
            zeros = torch.zeros(B, K, 1, dim, device=action_ids.device)
            return zeros, torch.zeros(B, K, 1, dtype=torch.bool, device=action_ids.device)
        hidden = self.scorer.encode_actions(ids, mask.long())  # (N, T, D)
        hidden = hidden * mask[..., None].to(hidden.dtype)
        act_h = hidden.new_zeros(B, K, ids.shape[1], dim)
        act_h[cand_mask] = hidden
        act_mask = torch.zeros(B, K, ids.shape[1], dtype=torch.bool, device=ids.device)
        act_mask[cand_mask] = mask
        return act_h, act_mask

    def _autocast(self) -> torch.autocast:
        """bf16 autocast as `Policy` decides it, for the device the module is on now
        (RLlib may move it after `setup`)."""
        device = next(self.scorer.parameters()).device
        precision = self.policy_config.precision
        bf16 = precision == "bf16" or (precision == "auto" and _bf16_native(str(device)))
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


@functools.lru_cache(maxsize=None)
def _bf16_native(device: str) -> bool:
    return bf16_native(device)  # reads /proc/cpuinfo: once per device, not per forward


def _trim(ids: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad-filled ids (..., W) cut to the longest real sequence (at least 1): ids, mask bool."""
    mask = ids != pad_id
    width = int(mask.sum(-1).max()) if mask.numel() else 1
    width = max(width, 1)
    return ids[..., :width], mask[..., :width]


# -- moving weights between the module and project checkpoints ----------------------------
def policy_weights(module_state: dict[str, Any]) -> dict[str, np.ndarray]:
    """A module state dict (tensors or arrays, as `get_state`/`get_weights` give it) as
    `Policy.set_weights` arrays (the "scorer." prefix removed)."""
    out = {}
    for name, value in module_state.items():
        if not name.startswith(PREFIX):
            raise KeyError(f"{name}: not a WebShopRLModule weight (expected the {PREFIX!r} prefix)")
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        out[name[len(PREFIX):]] = array
    return out


def load_project_checkpoint(module: WebShopRLModule, directory: str | Path) -> None:
    """Load a project checkpoint's weights into `module` (its architecture settings must
    match the module's; a shared-encoder checkpoint also fills a frozen action side)."""
    cfg = module.policy_config
    policy = load_checkpoint(directory, device="cpu", trainable_top_layers=cfg.trainable_top_layers,
                             freeze_action_side=cfg.freeze_action_side)
    module.scorer.load_state_dict(policy.model.state_dict(), strict=True)
    module.policy_version = policy.version


def module_policy(module: WebShopRLModule, version: int | None = None) -> Policy:
    """A CPU `Policy` holding a copy of the module's weights (the module is not touched)."""
    config = dataclasses.replace(module.policy_config, device="cpu")
    policy = Policy(config, copy.deepcopy(module.scorer).cpu(), module.tokenizer)
    policy.version = module.policy_version if version is None else version
    return policy


def export_project_checkpoint(module: WebShopRLModule, directory: str | Path,
                              metadata: CheckpointMetadata | None = None) -> Path:
    """Write the module's weights as a project checkpoint directory."""
    policy = module_policy(module, metadata.version if metadata else None)
    return save_checkpoint(policy, directory, metadata)
