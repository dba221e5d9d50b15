"""Learner state on disk: safetensors for tensors, JSON for everything else, never pickle.

    <dir>/learner-<generation>.safetensors
                                every tensor of the state, keyed by its dotted path:
                                weights.{name}, opt.{param_index}.{key}, rng.torch, ...
    <dir>/learner.json          the rest of the nested state; each tensor appears in it
                                as {"__tensor__": key} pointing into the safetensors file;
                                names that file and its generation

`split_tensors` / `join_tensors` are generic over nested dicts and lists, so the
learner decides the layout of its state (`Learner.state_dict`) and this module only
decides the file format. JSON turns dict keys into strings and tuples into lists;
the learner converts the few places where that matters back when it loads. Python
floats survive JSON exactly (repr round-trips), so a resumed learner's learning
rates and Adam hyper-parameters are bit-identical.

One save is one generation, committed by the JSON file: the tensors go to a new file
named by a fresh generation id (fsynced), then learner.json is replaced atomically
(`policies.atomic.write_file_atomic`), then older tensor files are removed. A kill at
any moment leaves a learner.json naming a whole tensors file of its own generation;
the tensors file's header carries the id too, and loading refuses a mismatch naming
the file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from policies.atomic import fsync_dir, fsync_file, new_generation, write_file_atomic

FORMAT_VERSION = 2  # 2: typed config sections, one reference-cache key type
TENSORS_FILE = "learner.safetensors"  # before generations: the one tensors file
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
                raise KeyError(f"the tensors file has no tensor {key!r} that {JSON_FILE} refers to")
            return tensors[key]
        return {k: join_tensors(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [join_tensors(v, tensors) for v in value]
    return value


def _tensors_name(generation: str) -> str:
    return f"learner-{generation}.safetensors"


def save_state(state: dict[str, Any], directory: str | Path, generation: str | None = None) -> Path:
    """Write a nested learner state to `directory` (created) as one new generation (id
    `generation`, or a fresh one); returns the directory."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    generation = generation or new_generation()
    name = _tensors_name(generation)
    meta = {"format": FORMAT_VERSION, "generation": generation, "tensors": name,
            "state": split_tensors(state, tensors)}
    save_file(tensors, str(out / name), metadata={"generation": generation})
    fsync_file(out / name)
    fsync_dir(out)
    write_file_atomic(out / JSON_FILE, json.dumps(meta, indent=1, sort_keys=True) + "\n")  # the commit
    for old in [*out.glob("learner*.safetensors"), *out.glob(f".{JSON_FILE}.tmp-*")]:  # earlier ones, crash debris
        if old.name != name:
            old.unlink(missing_ok=True)
    return out


def _read_tensors(path: Path, generation: str | None) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt") as f:
            header = dict(f.metadata() or {})
        tensors = load_file(str(path), device="cpu")
    except Exception as e:  # safetensors' own error type names no file
        raise ValueError(f"{path}: not a readable safetensors file (truncated or damaged?): {e}") from e
    if header.get("generation") != generation:
        raise ValueError(f"{path}: generation {header.get('generation')!r}, but {JSON_FILE} is of generation "
                         f"{generation!r} (parts of different saves)")
    return tensors


def state_generation(directory: str | Path) -> str | None:
    """The generation id `learner.json` in `directory` commits (without reading tensors)."""
    path = Path(directory) / JSON_FILE
    try:
        return json.loads(path.read_text()).get("generation")
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable learner state: {e}") from e


def load_state(directory: str | Path) -> dict[str, Any]:
    """Read what `save_state` wrote (tensors on the CPU).

    Raises:
        FileNotFoundError: no learner state in `directory` (names the missing file).
        ValueError: a damaged file, another format, or files of different generations.
    """
    root = Path(directory)
    if not (root / JSON_FILE).is_file():
        raise FileNotFoundError(f"{root / JSON_FILE}: no learner state here")
    try:
        meta = json.loads((root / JSON_FILE).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{root / JSON_FILE}: not valid JSON: {e}") from e
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{root / JSON_FILE}: format {meta.get('format')!r}, this code reads {FORMAT_VERSION}")
    name = meta.get("tensors", TENSORS_FILE)
    if not isinstance(name, str) or Path(name).name != name:
        raise ValueError(f"{root / JSON_FILE}: 'tensors' must be a file name in {root}, not {name!r}")
    tensors_path = root / name
    if not tensors_path.is_file():
        raise FileNotFoundError(f"{tensors_path}: missing ({root / JSON_FILE} names it)")
    return join_tensors(meta["state"], _read_tensors(tensors_path, meta.get("generation")))


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
