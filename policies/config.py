"""`PolicyConfig`: what defines a policy's architecture and how it runs, and the
named presets (`preset_config`) the CLI and configs choose from; `check_positive` and
`check_at_least`, the range checks every typed config section uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

import policies.encoder as enc


@dataclass(frozen=True)
class PolicyConfig:
    """Everything that defines a policy's architecture and how it runs."""

    model: str = enc.DEFAULT_MODEL
    """Encoder: "default" (shipped all-MiniLM-L6-v2), "tiny" (random 2-layer BERT for
    tests), a local directory or a Hugging Face name already in the local cache, of a
    family `policies.architectures` runs (BERT, RoBERTa, ELECTRA, DeBERTa-v2/v3)."""
    encoder_layers: int | None = None
    """Keep only the encoder's first N transformer layers; None = all. Fewer layers are
    less arithmetic per token, and for the CPU preset also the better policy (MiniLM-L6's
    first 2 layers: IL 52.0% against 37.4% with all 6, docs/RESULTS.md)."""
    max_state_tokens: int = 256
    """State text is cut to this many tokens; envs put the instruction first, so the
    cut drops the end of the page, never the instruction."""
    max_action_tokens: int = 48
    """Each candidate action string is cut to this many tokens (enough for a product
    link with its title, price and budget note on the generated catalog)."""
    trainable_top_layers: int | None = None
    """How many top encoder layers train; None = all layers and the embeddings. The
    frozen lower layers run without autograd (the CPU preset's main saving)."""
    freeze_action_side: bool = False
    """Encode actions with a frozen copy of the initial encoder: their encodings never
    change in training, so they are cached across updates, learner included."""
    action_cache_size: int = 4096
    """Entries of the LRU cache of action encodings (0 disables it)."""
    max_chunk_tokens: int = 4096
    """Padded tokens per encoder call; sequences are length-sorted into such chunks."""
    precision: str = "fp32"
    """"fp32"; "bf16" (encoders and head under torch.autocast(bfloat16) in act AND
    evaluate, so the two stay consistent; faster on CPUs with AMX-BF16 and on GPUs,
    encodings close to fp32); or "auto" (bf16 where the hardware multiplies bf16
    natively, else fp32)."""
    dropout: float = 0.0
    """Encoder dropout; 0 keeps act and evaluate log-probs identical (RL ratios)."""
    device: str = "cpu"
    """Torch device of the model ("cpu", "cuda", "cuda:1")."""
    seed: int = 0
    """Seed of the head initialisation (and of the tiny encoder's weights)."""


# What each preset trains, and why (bench/speed/policy_*.py measure them). Both use
# bf16 autocast where the hardware has native bf16 (AMX CPUs, GPUs) and fp32 elsewhere.
PRESETS: dict[str, dict[str, Any]] = {
    # CPU: a design for 2 cores, not a tweak. MiniLM-L6 cut to its first 2 layers (a
    # third of the arithmetic, and a better policy than all 6 in IL); states cut to 128
    # tokens (instruction first: search and item pages keep nearly all their text, a
    # results page only its first few products); the lower layer frozen and run under
    # inference_mode; only the top layer, the bi-attention head and the value head
    # train; actions are encoded by a frozen copy of the encoder and cached, so the
    # learner never re-encodes a known action string.
    "cpu": {"encoder_layers": 2, "max_state_tokens": 128, "trainable_top_layers": 1,
            "freeze_action_side": True, "precision": "auto"},
    # Full fine-tuning of every layer on both sides at 256 tokens: the GPU default.
    "full": {"max_state_tokens": 256, "trainable_top_layers": None, "freeze_action_side": False,
             "precision": "auto"},
}


def check_positive(section: str, config: Any, *names: str) -> None:
    """Raise ValueError naming `section.name` for each field of `config` that is not > 0."""
    for name in names:
        if not getattr(config, name) > 0:
            raise ValueError(f"{section}.{name} must be > 0, got {getattr(config, name)!r}")


def check_at_least(section: str, config: Any, low: int, *names: str) -> None:
    """Raise ValueError naming `section.name` for each field of `config` below `low`."""
    for name in names:
        if not getattr(config, name) >= low:
            raise ValueError(f"{section}.{name} must be >= {low}, got {getattr(config, name)!r}")


def bf16_native(device: str | torch.device) -> bool:
    """Whether `device` multiplies bf16 in hardware (CUDA bf16, or AMX / AVX512-BF16 CPUs
    whose AVX-512 kernels torch uses)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False  # torch runs AVX2 (or older) kernels: bf16 would be emulated (ATEN_CPU_CAPABILITY=avx2)
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def preset_config(name: str, **overrides: Any) -> PolicyConfig:
    """A `PolicyConfig` from a preset ("cpu" or "full"), with field overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown policy preset {name!r}; choose one of {sorted(PRESETS)}")
    return PolicyConfig(**{**PRESETS[name], **overrides})
