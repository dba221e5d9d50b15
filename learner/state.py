"""Learner state on disk: safetensors for tensors, JSON for everything else, never pickle.

    <dir>/learner.safetensors   every tensor of the state, keyed by its dotted path:
                                weights.{name}, opt.{param_index}.{key}, rng.torch, ...
    <dir>/learner.json          the rest of the nested state; each tensor appears in it
                                as {"__tensor__": key} pointing into the safetensors file

`split_tensors` / `join_tensors` are generic over nested dicts and lists, so the
learner decides the layout of its state (`Learner.state_dict`) and this module only
decides the file format. JSON turns dict keys into strings and tuples into lists;
the learner converts the few places where that matters back when it loads. Python
floats survive JSON exactly (repr round-trips), so a resumed learner's learning
rates and Adam hyper-parameters are bit-identical.

Both files are written to a temporary name and renamed, so a crash while saving
leaves the previous files whole (the pair is not replaced atomically together; the
JSON, written last, names a tensor file that is complete).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

FORMAT_VERSION = 2  # 2: typed config sections, one reference-cache key type
TENSORS_FILE = "learner.safetensors"
JSON_FILE = "learner.json"
TENSOR_TAG = "__tensor__"


def split_tensors(value: Any, tensors: dict[str, torch.Tensor], path: str = "") -> Any:
    """A JSON-able copy of `value` with every tensor (or numpy array) moved into `tensors`.

    Keys of `tensors` are dotted paths ("opt.3.exp_avg"); the tensors are detached,
    copied to the CPU and made contiguous (safetensors refuses shared storage).
    """
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if torch.is_tensor(value):
        tensors[path] = value.detach().to("cpu", copy=True).contiguous()
        return {TENSOR_TAG: path}
    if isinstance(value, dict):
        return {str(k): split_tensors(v, tensors, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [split_tensors(v, tensors, f"{path}.{i}") for i, v in enumerate(value)]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"learner state at {path!r}: {type(value).__name__} is neither a tensor nor JSON-able")


def join_tensors(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `split_tensors`: placeholders replaced by their tensors."""
    if isinstance(value, dict):
        if set(value) == {TENSOR_TAG}:
            key = value[TENSOR_TAG]
            if key not in tensors:
                raise KeyError(f"{TENSORS_FILE} has no tensor {key!r} that {JSON_FILE} refers to")
            return tensors[key]
        return {k: join_tensors(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [join_tensors(v, tensors) for v in value]
    return value


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_state(state: dict[str, Any], directory: str | Path) -> Path:
    """Write a nested learner state to `directory` (created); returns the directory."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    meta = {"format": FORMAT_VERSION, "state": split_tensors(state, tensors)}
    _write_atomic(out / TENSORS_FILE, lambda p: save_file(tensors, str(p)))
    text = json.dumps(meta, indent=1, sort_keys=True) + "\n"
    _write_atomic(out / JSON_FILE, lambda p: p.write_text(text))
    return out


def load_state(directory: str | Path) -> dict[str, Any]:
    """Read what `save_state` wrote (tensors on the CPU)."""
    root = Path(directory)
    for name in (TENSORS_FILE, JSON_FILE):
        if not (root / name).is_file():
            raise FileNotFoundError(f"{root / name}: no learner state here (expected {TENSORS_FILE} + {JSON_FILE})")
    meta = json.loads((root / JSON_FILE).read_text())
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{root / JSON_FILE}: format {meta.get('format')!r}, this code reads {FORMAT_VERSION}")
    return join_tensors(meta["state"], load_file(str(root / TENSORS_FILE), device="cpu"))


# --------------------------------------------------------------------------- RNGs


def capture_rng(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Global torch / numpy / Python RNG states, the learner's own generator, and the
    CUDA generator of `device` when it is a GPU."""
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "numpy": {"name": name, "keys": keys.astype(np.int64), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator, device: torch.device) -> None:
    """Set the RNGs `capture_rng` saw (accepts the JSON forms: lists for tuples)."""
    torch.set_rng_state(state["torch"].to(torch.uint8))
    generator.set_state(state["generator"].to(torch.uint8))
    np_state = state["numpy"]
    keys = np.asarray(np_state["keys"], dtype=np.int64).astype(np.uint32)
    np.random.set_state((np_state["name"], keys, np_state["pos"], np_state["has_gauss"],
                         np_state["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].to(torch.uint8), device)
