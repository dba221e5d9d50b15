"""The encoder architectures the policy can run layer by layer, and how each is run.

The policy runs an encoder's embeddings and transformer layers itself (`run_layers`)
rather than calling the model's forward, so that frozen lower layers run without
autograd, their outputs can be cached, and only the top layers train. That needs
each architecture's layer call, and the families differ:

- BERT, RoBERTa, XLM-RoBERTa, ELECTRA: a layer takes the hidden states and an
  additive attention mask (N, 1, 1, T); RoBERTa's embeddings derive position ids
  from the token ids (padding index), ELECTRA may project its embeddings up to the
  hidden size (`embeddings_project`).
- DeBERTa (v1) and DeBERTa-v2 (v2 and v3 checkpoints): the embeddings zero padded
  positions; a layer takes a pairwise mask (N, 1, T, T), the relative positions
  (log-bucketed in v2/v3) and the relative-position embeddings, which the encoder
  holds once for all layers (in v3 after a LayerNorm); some v2 models add a
  convolution beside the first layer.

Anything else (GPT-2, Llama, T5, DistilBERT, MPNet, ...) is refused when it loads, with
the model class and this list (`UnsupportedEncoderError`); a decoder would run here
without its causal mask, and other encoders call their layers differently again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel


class UnsupportedEncoderError(ValueError):
    """An encoder architecture the policy cannot run layer by layer; names the class."""


class EncoderLayersError(ValueError):
    """More (or fewer than 1) encoder layers asked for than the encoder has."""


def _run_bert(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    if start == 0:
        x = model.embeddings(input_ids=x)  # (N, T, E); RoBERTa: positions from the ids
        project = getattr(model, "embeddings_project", None)  # ELECTRA: E != hidden size
        if project is not None:
            x = project(x)
    # Additive mask (N, 1, 1, T): the form both the eager and the SDPA attention accept.
    additive = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
    for layer in model.encoder.layer[start:stop]:
        out = layer(x, attention_mask=additive)
        x = out[0] if isinstance(out, tuple) else out  # some versions return tuples
    return x  # (N, T, D)


def _run_deberta(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    encoder = model.encoder
    mask = mask.long()  # as a tokenizer gives it: the convolution computes 1 - mask
    if start == 0:
        x = model.embeddings(input_ids=x, mask=mask)  # (N, T, D), padded positions zeroed
    embedded = x
    pair_mask = encoder.get_attention_mask(mask)  # (N, 1, T, T)
    relative_pos = encoder.get_rel_pos(x)  # (1, T, T), None without relative attention
    rel_embeddings = encoder.get_rel_embedding()  # (2 * span, D), shared by every layer
    for i in range(start, stop):
        x = encoder.layer[i](x, pair_mask, relative_pos=relative_pos, rel_embeddings=rel_embeddings)[0]
        if i == 0 and getattr(encoder, "conv", None) is not None:
            x = encoder.conv(embedded, x, mask)
    return x  # (N, T, D)


@dataclass(frozen=True)
class Family:
    """One way of running an architecture's layers."""

    name: str
    model_types: tuple[str, ...]
    """Hugging Face `config.model_type` values run this way."""
    run: Callable[[nn.Module, torch.Tensor, torch.Tensor, int, int], torch.Tensor]
    input_parts: tuple[str, ...] = ()
    """Submodules besides `embeddings` that feed every layer, or the first one: they are
    frozen with the lower layers, so that frozen layers' outputs never change."""


FAMILIES = (
    Family("BERT", ("bert",), _run_bert),
    Family("RoBERTa", ("roberta", "xlm-roberta"), _run_bert),
    Family("ELECTRA", ("electra",), _run_bert, ("embeddings_project",)),
    Family("DeBERTa", ("deberta", "deberta-v2"), _run_deberta,
           ("encoder.rel_embeddings", "encoder.LayerNorm", "encoder.conv")),
)
_BY_MODEL_TYPE = {t: f for f in FAMILIES for t in f.model_types}
SUPPORTED = "; ".join(f"{f.name} ({', '.join(f.model_types)})" for f in FAMILIES)
"""The supported families and their model types, as the error names them."""


def _model_class_name(config) -> str:
    """The AutoModel class a config builds (e.g. GPT2Model), without building it."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    name = MODEL_MAPPING_NAMES.get(config.model_type)
    if isinstance(name, (tuple, list)):
        name = name[0]
    return name or type(config).__name__.removesuffix("Config") + "Model"


def check_config(config, what: str, class_name: str | None = None) -> Family:
    """The family of a Hugging Face config.

    Args:
        what: how the error names the model (e.g. "encoder '/models/gpt2'").
        class_name: the model's class name, when a model was built already.
    Raises:
        UnsupportedEncoderError: one line naming the model class and the supported families.
    """
    model_type = getattr(config, "model_type", None)
    family = _BY_MODEL_TYPE.get(model_type)
    decoder = bool(getattr(config, "is_decoder", False))
    if family is None or decoder:
        name = class_name or _model_class_name(config)
        why = "is configured as a decoder (is_decoder=true)" if family is not None else "is not supported"
        raise UnsupportedEncoderError(
            f"{what}: {name} (model_type {model_type!r}) {why}; the policy runs the layers of a "
            f"bidirectional encoder one by one and supports {SUPPORTED}")
    return family


def family_of(model: nn.Module) -> Family:
    """The family of a built model (raises UnsupportedEncoderError like `check_config`)."""
    config = getattr(model, "config", None)
    if config is None:
        raise UnsupportedEncoderError(
            f"{type(model).__name__} is not a Hugging Face model (no .config); supported: {SUPPORTED}")
    return check_config(config, "encoder", type(model).__name__)


def num_layers(model: nn.Module) -> int:
    """Number of transformer layers of a supported encoder."""
    family_of(model)
    return len(model.encoder.layer)


def check_layer_count(keep: int, total: int) -> None:
    """Raise EncoderLayersError unless 1 <= `keep` <= `total` (the encoder's layers)."""
    if not 1 <= keep <= total:
        raise EncoderLayersError(f"encoder_layers must be from 1 to {total} (the encoder's layer count), got {keep}")


def keep_lower_layers(model: nn.Module, keep: int) -> None:
    """Drop every transformer layer above the first `keep`, in place (the config says so
    too, so a checkpoint rebuilds the shorter encoder). The encoder's output is then its
    `keep`-th layer's, exactly as the full model computes it there."""
    check_layer_count(keep, num_layers(model))
    model.encoder.layer = model.encoder.layer[:keep]
    model.config.num_hidden_layers = keep


GPU_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
"""The attention kernels the encoders use on a GPU: not cuDNN's, which torch prefers on
Hopper chips and which builds a graph for every new input shape, while the policy's shapes
change with every batch. On one H200 (torch 2.11), acting for 64 envs took 85-128 ms a
call on shapes not seen before and 29 ms on repeated ones, with cuDNN's attention in the
profile (docs/RESULTS.md, "GPU check")."""


def attention_kernels(device: torch.device | str) -> contextlib.AbstractContextManager:
    """The context the encoders run in on `device`: `GPU_ATTENTION` on CUDA, else nothing."""
    if torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    return sdpa_kernel(GPU_ATTENTION)


def run_layers(
    model: nn.Module,
    hidden_or_ids: torch.Tensor,
    mask: torch.Tensor,
    start: int,
    stop: int,
) -> torch.Tensor:
    """Run layers `start..stop-1` (start == 0 also runs the embeddings).

    Args:
        hidden_or_ids: token ids (N, T) when start == 0, else hidden states (N, T, D).
        mask: attention mask (N, T), 1 for real tokens.
    Returns:
        hidden states (N, T, D); run from 0 to the last layer, the model's own
        last_hidden_state.
    """
    with attention_kernels(hidden_or_ids.device):
        return family_of(model).run(model, hidden_or_ids, mask, start, stop)


def lower_modules(model: nn.Module, num_frozen: int) -> dict[str, nn.Module]:
    """{name under `model`: module} of everything frozen with the lower `num_frozen`
    layers: the embeddings, the family's `input_parts` the model has, the layers.
    Empty when `num_frozen` is 0 (then everything trains)."""
    if num_frozen <= 0:
        return {}
    family = family_of(model)
    parts = {"embeddings": model.embeddings}
    for name in family.input_parts:
        try:
            module = model.get_submodule(name)
        except AttributeError:  # e.g. DeBERTa without a LayerNorm on rel_embeddings, or no conv
            continue
        if module is not None:
            parts[name] = module
    parts.update({f"encoder.layer.{i}": model.encoder.layer[i] for i in range(num_frozen)})
    return parts
