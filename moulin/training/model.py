"""Tabular networks for the trainer, behind one small interface.

A network is built from the feature contract's column roles (the cardinality
of each categorical column and the number of numeric inputs) and a config
dict, takes ``forward(categorical, numeric)`` and returns one logit per row
(binary classification); it is saved and loaded as its ``state_dict`` with its
registered name and config.  Networks are declared in :mod:`moulin.training.networks`
(one module per family, found by scanning that package); the trainer (``ddp.py``,
``run.py``, ``artifacts.py``) builds them by name.

The built-in ``mlp``: one embedding per categorical column, concatenated with
the numeric inputs, then fully connected layers to one logit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class MLPConfig:
    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.1
    max_embedding_dim: int = 16

    def to_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, data: dict) -> MLPConfig:
        return cls(
            hidden=tuple(int(h) for h in data.get("hidden", (64, 32))),
            dropout=float(data.get("dropout", 0.1)),
            max_embedding_dim=int(data.get("max_embedding_dim", 16)),
        )


def embedding_dim(cardinality: int, cap: int) -> int:
    """A common rule of thumb (1.6 * n^0.56), capped."""
    return max(1, min(cap, round(1.6 * cardinality**0.56)))


class TabularMLP(nn.Module):
    """Embeddings of the categorical columns + numeric inputs -> fully connected layers -> one logit."""

    def __init__(
        self, cardinalities: Sequence[int], n_numeric: int, config: MLPConfig | None = None, outputs: int = 1
    ):
        super().__init__()
        self.outputs = int(outputs)
        config = config or MLPConfig()
        self.cardinalities = list(cardinalities)
        self.n_numeric = int(n_numeric)
        self.embeddings = nn.ModuleList(
            nn.Embedding(card, embedding_dim(card, config.max_embedding_dim)) for card in self.cardinalities
        )
        width = sum(e.embedding_dim for e in self.embeddings) + self.n_numeric
        layers: list[nn.Module] = []
        for size in config.hidden:
            layers += [nn.Linear(width, size), nn.LayerNorm(size), nn.ReLU(), nn.Dropout(config.dropout)]
            width = size
        layers.append(nn.Linear(width, self.outputs))
        self.body = nn.Sequential(*layers)

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """Logits, shape [batch] (one output) or [batch, outputs] (one per class)."""
        parts = [emb(categorical[:, j]) for j, emb in enumerate(self.embeddings)]
        parts.append(numeric)
        logits = self.body(torch.cat(parts, dim=1))
        return logits.squeeze(-1) if self.outputs == 1 else logits


@torch.no_grad()
def predict_proba(
    model: nn.Module, categorical, numeric, batch_size: int = 8192, device: str = "cpu"
) -> torch.Tensor:
    """Probabilities of the positive class for numpy/tensor inputs (eval mode)."""
    model.eval()
    cat = torch.as_tensor(categorical, dtype=torch.long)
    num = torch.as_tensor(numeric, dtype=torch.float32)
    out = []
    for start in range(0, len(cat), batch_size):
        logits = model(cat[start : start + batch_size].to(device), num[start : start + batch_size].to(device))
        out.append(torch.sigmoid(logits).cpu())
    return torch.cat(out) if out else torch.zeros(0)
