"""Frozen-layer encodings by text, computed canonically and shared through a folder.

The frozen parts of a CPU-preset policy (the action encoder; the embeddings and lower
state layers) are a function of their text alone, so IL epochs, later runs, every
rollout worker, the learner, evaluations and Serve can reuse one another's work. Two
pieces make that exact:

- `encode_canonical` pads each text to a length bucket and computes it so that its
  result does not depend on what it was batched with, bit for bit (a batch of free shape
  does: matrix kernels change their summation order with the batch's size and the
  number of threads). On a CPU every text of one bucket goes in one stack, computed by
  single-threaded workers (`torch.get_num_threads()` of them, each taking a share of the
  rows): with one intra-op thread a row comes out the same in a stack of any height. On a
  GPU, slabs of a fixed height (filler rows repeat a real one). A cached value then
  equals a fresh computation of the same text, in any process.
- `EncodingStore` keeps encodings as safetensors files, one per text, named by the
  text's SHA-256 under a namespace that hashes everything the values depend on: the
  frozen weights, the token limit, the dtype, the device type, torch's version and the
  CPU's kernels (`namespace_key`). New weights mean a new namespace, never a stale value.
  Files are written to a temporary name and renamed, so a reader sees a whole file or
  none; a file that does not load is a miss. When the folder grows past `max_bytes`
  the oldest files go.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

EncodeFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # ids, mask (N, T) -> (N, T, D)

LENGTH_BUCKETS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
"""A slab is padded to the first bucket that holds its texts' tokens."""
SLAB_ROWS = {"cuda": 64}
"""Rows per slab on a GPU (kernels there may change their summation order with the
batch size). A CPU stacks instead: one 128-token state costs 19 ms alone and 17 per row
in 8, and a pass of MiniLM's action encoder reads its weights (~5 ms on an AVX2 core)
whatever its height, so slabs of filler rows or many small passes cost more than one
stack per bucket (bench/speed/profile_serve.py, docs/RESULTS.md)."""
MAX_STACK_TOKENS = 16_384
"""Most padded tokens in one CPU pass (a bound on its activations)."""
SWEEP_EVERY_BYTES = 256 << 20
"""A process checks the folder's size after writing this much."""


def bucket_length(num_tokens: int) -> int:
    """The slab length for a text of `num_tokens` tokens (itself beyond the last bucket)."""
    i = bisect.bisect_left(LENGTH_BUCKETS, num_tokens)
    return LENGTH_BUCKETS[i] if i < len(LENGTH_BUCKETS) else num_tokens


def canonical_scheme(device: torch.device | str) -> str:
    """How `encode_canonical` computes on `device` (part of the store's namespace)."""
    kind = torch.device(device).type
    if kind == "cpu":
        return "cpu: single-threaded stacks"
    attention = ", attention without cuDNN" if kind == "cuda" else ""  # policies.architectures.GPU_ATTENTION
    return f"{kind}: slabs of {SLAB_ROWS.get(kind, 8)} rows{attention}"


_WORKERS: dict[int, ThreadPoolExecutor] = {}


def _workers(n: int) -> ThreadPoolExecutor:
    """A pool of `n` threads that each run torch with one intra-op thread (set per thread)."""
    if n not in _WORKERS:
        _WORKERS[n] = ThreadPoolExecutor(n, thread_name_prefix="canonical-encode",
                                         initializer=torch.set_num_threads, initargs=(1,))
    return _WORKERS[n]


def _padded(seqs: Sequence[Sequence[int]], width: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)  # (R, W)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)  # (R, W)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[r, :len(s)] = 1
    return ids, mask


def _cpu_stacks(encode: EncodeFn, seqs: list[Sequence[int]], width: int, pad_id: int) -> list[torch.Tensor]:
    """(R, W, D) encodings of `seqs` at one width, by single-threaded workers; in the calling
    thread when it runs one intra-op thread itself."""
    threads = torch.get_num_threads()
    per_pass = max(1, MAX_STACK_TOKENS // width)
    shares = max(threads, -(-len(seqs) // per_pass))
    size = -(-len(seqs) // min(shares, len(seqs)))
    stacks = [_padded(seqs[i:i + size], width, pad_id) for i in range(0, len(seqs), size)]
    if threads == 1:
        return [encode(ids, mask) for ids, mask in stacks]
    # grad, inference and autocast modes are per thread: the workers take the caller's
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()
    autocast, dtype = torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")

    def run(stack: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        with torch.inference_mode(inference), torch.set_grad_enabled(grad), \
                torch.autocast("cpu", dtype=dtype, enabled=autocast):
            return encode(*stack)

    return list(_workers(threads).map(run, stacks))


def encode_canonical(encode: EncodeFn, seqs: Sequence[Sequence[int]], pad_id: int,
                     device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """Encode token id lists; one (T_i, D) per input, each a function of its own tokens
    only (see module doc)."""
    device = torch.device(device)
    groups: dict[int, list[int]] = {}
    for i, s in enumerate(seqs):
        groups.setdefault(bucket_length(len(s)), []).append(i)
    out: list[torch.Tensor | None] = [None] * len(seqs)
    for width, members in sorted(groups.items()):
        if device.type == "cpu":
            rows = [r for hidden in _cpu_stacks(encode, [seqs[i] for i in members], width, pad_id) for r in hidden]
            for i, hidden in zip(members, rows):
                out[i] = hidden[:len(seqs[i])]
            continue
        height = SLAB_ROWS.get(device.type, 8)
        for start in range(0, len(members), height):
            part = members[start:start + height]
            ids, mask = _padded([seqs[i] for i in part] + [seqs[part[-1]]] * (height - len(part)), width, pad_id)
            hidden = encode(ids.to(device), mask.to(device))  # (R, W, D)
            for r, i in enumerate(part):
                out[i] = hidden[r, :len(seqs[i])]
    return out  # type: ignore[return-value]


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of named tensors (names, dtypes, shapes and bytes), in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def namespace_key(kind: str, weights_digest: str, max_tokens: int, dtype: torch.dtype,
                  device: torch.device | str, vocab_digest: str) -> str:
    """The folder name for one frozen part's encodings: a hash of everything they depend on."""
    parts = [kind, weights_digest, str(max_tokens), str(dtype), torch.device(device).type, torch.__version__,
             torch.backends.cpu.get_cpu_capability(), vocab_digest, canonical_scheme(device)]
    return f"{kind}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:24]}"


def vocab_digest(tokenizer) -> str:
    """SHA-256 of a tokenizer's vocabulary and class (what turns text into ids)."""
    vocab = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(f"{type(tokenizer).__name__}|{vocab}".encode()).hexdigest()


class EncodingStore:
    """Encodings on disk under `directory/<namespace>/<sha[:2]>/<sha>.safetensors`."""

    def __init__(self, directory: str | Path, max_bytes: int):
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        self.directory = Path(directory).expanduser()
        self.max_bytes = max_bytes
        self.hits = self.misses = self.writes = 0
        self._written_since_sweep = 0

    def _path(self, namespace: str, text: str) -> Path:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return self.directory / namespace / digest[:2] / f"{digest}.safetensors"

    def get(self, namespace: str, text: str) -> torch.Tensor | None:
        """The stored (T, D) encoding of `text`, or None (absent, or a file that does not load)."""
        path = self._path(namespace, text)
        try:
            data = path.read_bytes()
        except OSError:  # absent (or a folder that cannot be read): compute it
            self.misses += 1
            return None
        try:
            tensor = load_safetensors(data)["hidden"]
        except Exception:  # a damaged file (a crash before the data reached the disk): recompute
            self.misses += 1
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            return None
        self.hits += 1
        return tensor

    def put(self, namespace: str, text: str, tensor: torch.Tensor) -> None:
        """Store `tensor` for `text` (atomically: write elsewhere, then rename)."""
        path = self._path(namespace, text)
        tmp = None
        try:
            if path.exists():
                return
            data = save_safetensors({"hidden": tensor.detach().cpu().contiguous()})
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError:  # a full or read-only disk costs speed, never the run
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            return
        self.writes += 1
        self._written_since_sweep += len(data)
        if self._written_since_sweep >= SWEEP_EVERY_BYTES:
            self._written_since_sweep = 0
            self.sweep()

    def _files(self) -> Iterable[tuple[float, int, Path]]:
        for root, _, names in os.walk(self.directory):
            for name in names:
                path = Path(root) / name
                try:
                    st = path.stat()
                except FileNotFoundError:  # removed by another process meanwhile
                    continue
                yield st.st_mtime, st.st_size, path

    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self._files())

    def sweep(self) -> int:
        """Delete the oldest files until the folder holds at most 80% of `max_bytes`
        (when it holds more than `max_bytes`); returns how many went."""
        files = sorted(self._files())
        total = sum(size for _, size, _ in files)
        if total <= self.max_bytes:
            return 0
        removed = 0
        for _, size, path in files:
            if total <= 0.8 * self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed
