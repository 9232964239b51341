"""Column roles of the feature table, read from its YAML contract."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from moulin.contracts import ContractError, find_contract_file
from moulin.training import TrainingError

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class FeatureContract:
    """What training needs to know about the feature table."""

    name: str
    table: str
    key: str
    split: str
    label: str
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    nullable: frozenset[str]
    time: str | None = None
    partition_by: tuple[str, ...] = ()
    split_rule: dict | None = None

    @property
    def feature_columns(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    @property
    def read_columns(self) -> list[str]:
        """Columns read from the data files (the split is a partition value)."""
        return [self.key, self.label, *self.feature_columns]

    @classmethod
    def load(cls, contract: str | Path) -> FeatureContract:
        """The feature contract called ``contract`` (found like any contract) or in file ``contract``."""

        text = str(contract)
        if text.endswith((".yaml", ".yml")) or isinstance(contract, Path):
            path = Path(contract)
        else:
            try:
                path = find_contract_file(text)
            except ContractError as exc:
                raise TrainingError(str(exc)) from None
        try:
            doc = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise TrainingError(f"cannot read the feature contract {path}: {exc}") from exc
        by_role: dict[str, list[str]] = {}
        nullable = set()
        for col in doc.get("columns", []):
            by_role.setdefault(col.get("role", ""), []).append(col["name"])
            if col.get("nullable", True):
                nullable.add(col["name"])

        def one(role: str, required: bool = True) -> str | None:
            names = by_role.get(role, [])
            if len(names) != 1:
                if not required and not names:
                    return None
                raise TrainingError(
                    f"contract {path} must have exactly one column with role {role!r}, has {names}"
                )
            return names[0]

        if not by_role.get("categorical") and not by_role.get("numeric"):
            raise TrainingError(f"contract {path} declares no categorical or numeric feature column")
        return cls(
            name=doc.get("name", path.stem),
            table=doc.get("table", ""),
            key=one("key"),
            split=one("split"),
            label=one("label"),
            time=one("time", required=False),
            categorical=tuple(by_role.get("categorical", [])),
            numeric=tuple(by_role.get("numeric", [])),
            nullable=frozenset(nullable),
            partition_by=tuple(doc.get("partition_by", [])),
            split_rule=doc.get("split"),
        )
