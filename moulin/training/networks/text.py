"""The text networks ``text_cnn`` and ``minilm`` (:mod:`moulin.training.text`)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from moulin.training.networks import network
from moulin.training.text import MiniLMClassifier, TextCNN


@network("text_cnn")
def _text_cnn(cardinalities: Sequence[int], n_numeric: int, config: dict) -> nn.Module:
    if "vocab_size" not in config:
        raise ValueError("the text_cnn network needs config vocab_size (TextCodec.vocab_size)")
    return TextCNN(
        vocab_size=int(config["vocab_size"]),
        num_classes=int(config.get("num_classes", 2)),
        embedding_dim=int(config.get("embedding_dim", 64)),
        filters=int(config.get("filters", 64)),
        kernel_sizes=tuple(int(k) for k in config.get("kernel_sizes", (3, 4, 5))),
        dropout=float(config.get("dropout", 0.5)),
    )


@network("minilm")
def _minilm(cardinalities: Sequence[int], n_numeric: int, config: dict) -> nn.Module:
    return MiniLMClassifier(
        num_classes=int(config.get("num_classes", 2)),
        pretrained=bool(config.get("pretrained", True)),
        train_layers=config.get("train_layers", 2),
        dropout=float(config.get("dropout", 0.1)),
    )
