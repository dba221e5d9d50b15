"""Policy checkpoints: a directory of safetensors + JSON + tokenizer files, never pickle.

    <dir>/model.safetensors   every tensor of the ActionScorer state dict
    <dir>/config.json         {"format": 1, "policy": PolicyConfig, "encoder": HF config}
    <dir>/metadata.json       policy version, steps, metrics, training config
    <dir>/tokenizer files     as the tokenizer's save_pretrained writes them

One save is one generation: the files are written into a staging directory beside
<dir> (tokenizer before metadata), fsynced and swapped in as a whole
(`policies.atomic.staged_directory`), so a kill at any moment leaves the previous
checkpoint or the new one. The weights' header, config.json and metadata.json carry
the same generation id; loading refuses parts of different generations and names
the file that differs. A directory holding files a save does not write (other than
old tokenizer files) is never replaced.

Loading rebuilds the encoder from the saved HF config (no hub, no download), loads
the tensors with safetensors and refuses a directory whose files include a pickle-based
one (.bin, .pt, .pth, .pkl, .pickle, .ckpt): such files can run code when loaded.
A round trip is bit-exact.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import policies.encoder as enc
from policies.atomic import new_generation, resolve_directory, staged_directory
from policies.model import ActionScorer
from policies.config import PolicyConfig
from policies.policy import Policy

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


class UnsafeCheckpointError(ValueError):
    """A checkpoint that would need unpickling to load; names the file."""


class CheckpointError(ValueError):
    """A checkpoint directory that is incomplete or inconsistent."""


@dataclass(frozen=True)
class CheckpointMetadata:
    """What a checkpoint says about its training."""

    version: int = 0  # policy version (weight updates published)
    steps: int = 0  # learner / IL optimizer steps
    metrics: dict[str, Any] = field(default_factory=dict)  # e.g. success, score, loss
    train_config: dict[str, Any] = field(default_factory=dict)  # the TrainConfig as a dict


def _refuse_pickles(path: Path) -> None:
    """Refuse `path` if it is a pickle-based file or a directory holding one among its
    files (loading reads no subdirectory, so a large tree given by mistake is not walked)."""
    candidates = [path] if path.is_file() else sorted(f for f in path.iterdir() if f.is_file())
    for f in candidates:
        if f.suffix.lower() in PICKLE_SUFFIXES:
            raise UnsafeCheckpointError(
                f"{f}: refusing to load a pickle-based file ({f.suffix}); checkpoints are "
                f"safetensors + JSON only. Convert it with a trusted tool, then save with "
                f"policies.checkpoint.save_checkpoint"
            )


def _check_replaceable(out: Path, written: set[str]) -> None:
    """Refuse to replace a directory holding anything a checkpoint save does not write."""
    if not out.exists():
        return
    if not out.is_dir():
        raise CheckpointError(f"{out}: exists and is not a directory; refusing to replace it with a checkpoint")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in written and not _is_tokenizer_file(p))
    if foreign:
        raise CheckpointError(f"{out}: holds {foreign[:5]}, which a policy checkpoint does not write; "
                              f"refusing to replace it (save to a new directory)")


def _is_tokenizer_file(p: Path) -> bool:
    return p.is_file() and (p.name.startswith(("tokenizer", "special_tokens", "added_tokens", "vocab", "merges")))


def save_checkpoint(policy: Policy, directory: str | Path, metadata: CheckpointMetadata | None = None,
                    generation: str | None = None) -> Path:
    """Write `policy` (weights, configs, tokenizer) and `metadata` to `directory`, as one
    generation that replaces any earlier checkpoint there atomically. `generation`: the
    id to carry (a run's checkpoint generation gives its own); None: a fresh one."""
    out = Path(directory)
    generation = generation or new_generation()
    tensors = {k: v.detach().cpu().contiguous() for k, v in policy.model.state_dict().items()}
    config = {
        "format": FORMAT_VERSION,
        "generation": generation,
        "policy": dataclasses.asdict(policy.config),
        "encoder": policy.model.encoder.config.to_diff_dict(),
    }
    meta = {**dataclasses.asdict(metadata or CheckpointMetadata(version=policy.version)), "generation": generation}
    with staged_directory(out) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": str(FORMAT_VERSION), "generation": generation})
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        policy.tokenizer.save_pretrained(str(tmp))
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")  # last
        _check_replaceable(resolve_directory(out), {p.name for p in tmp.iterdir()})
    return out


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (not a policy checkpoint directory?)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON: {e}") from e


def read_metadata(directory: str | Path) -> CheckpointMetadata:
    """The metadata of a checkpoint directory."""
    raw = _read_json(resolve_directory(directory) / METADATA_FILE)
    known = {f.name for f in dataclasses.fields(CheckpointMetadata)}
    return CheckpointMetadata(**{k: v for k, v in raw.items() if k in known})


def _weights_header(path: Path) -> dict[str, str]:
    """The string metadata in a safetensors header; a damaged file raises naming it."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error type, naming no file
        raise CheckpointError(f"{path}: not a readable safetensors file (truncated or damaged?): {e}") from e


def check_generation(directory: str | Path) -> str | None:
    """The generation id every part of a checkpoint carries (None: saved before ids existed).

    Raises:
        CheckpointError: a part is missing, damaged, or of another generation (named).
    """
    path = resolve_directory(directory)
    meta = _read_json(path / METADATA_FILE).get("generation")
    if not (path / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"{path / WEIGHTS_FILE}: missing")
    parts = {path / CONFIG_FILE: _read_json(path / CONFIG_FILE).get("generation"),
             path / WEIGHTS_FILE: _weights_header(path / WEIGHTS_FILE).get("generation")}
    for file, generation in parts.items():
        if generation != meta:
            raise CheckpointError(f"{file}: generation {generation!r}, but {path / METADATA_FILE} is of "
                                  f"generation {meta!r} (parts of different saves)")
    return meta


def is_committed(directory: str | Path) -> bool:
    """Whether `directory` holds a whole checkpoint (every part present, one generation)."""
    try:
        check_generation(directory)
    except CheckpointError:
        return False
    return True


def _load_tensors(path: Path, model: ActionScorer) -> dict[str, torch.Tensor]:
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error type, naming no file
        raise CheckpointError(f"{path}: not a readable safetensors file (truncated or damaged?): {e}") from e
    expected = set(model.state_dict())
    if model.frozen_action_side and not any(k.startswith("action_encoder.") for k in tensors):
        # A checkpoint trained with a shared encoder: the frozen action side starts from it.
        tensors.update({"action_encoder." + k[len("encoder."):]: v
                        for k, v in tensors.items() if k.startswith("encoder.")})
    if not model.frozen_action_side:
        tensors = {k: v for k, v in tensors.items() if not k.startswith("action_encoder.")}
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or unexpected:
        raise CheckpointError(f"{path}: tensors do not match the model: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")
    return tensors


def _read_config(path: Path) -> dict:
    raw = _read_json(path / CONFIG_FILE)
    if raw.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path / CONFIG_FILE}: format {raw.get('format')!r}, expected {FORMAT_VERSION}")
    return raw


def _policy_config(raw: dict, overrides: dict) -> PolicyConfig:
    fields = {f.name for f in dataclasses.fields(PolicyConfig)}
    return PolicyConfig(**{**{k: v for k, v in raw["policy"].items() if k in fields}, **overrides})


def read_policy_config(directory: str | Path, **overrides: Any) -> PolicyConfig:
    """The `PolicyConfig` a checkpoint was saved with (its `overrides` changed), without
    its weights: what a process that receives the weights later builds its policy from."""
    return _policy_config(_read_config(resolve_directory(directory)), overrides)


def load_checkpoint(directory: str | Path, **overrides: Any) -> Policy:
    """Load a policy saved by `save_checkpoint`; `overrides` change PolicyConfig fields
    (e.g. device, precision, trainable_top_layers).

    Raises:
        UnsafeCheckpointError: the path is, or the directory holds, a pickle file.
        CheckpointError: files missing or not matching each other.
    """
    path = resolve_directory(directory)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint directory")
    _refuse_pickles(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: a checkpoint is a directory ({WEIGHTS_FILE} + JSON)")
    raw = _read_config(path)
    config = _policy_config(raw, overrides)
    check_generation(path)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    encoder = enc.model_from_config(raw["encoder"], dropout=config.dropout)
    model = ActionScorer(encoder, config.trainable_top_layers, config.freeze_action_side)
    model.load_state_dict(_load_tensors(path / WEIGHTS_FILE, model), strict=True)
    policy = Policy(config, model, tokenizer)
    policy.version = read_metadata(path).version
    return policy
