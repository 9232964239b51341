"""The networks the trainer builds by name, found by scanning this package.

Each module of this package declares networks with :func:`network`: a builder
``builder(cardinalities, n_numeric, config) -> nn.Module`` under a name.  The
first look-up (:func:`build_network`, :func:`registered_networks`) imports every
module of the package, so a new network is one declaration in one module here
(a new family: one new module), and no other module lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

NetworkBuilder = Callable[[Sequence[int], int, dict], "nn.Module"]
_BUILDERS: dict[str, NetworkBuilder] = {}
_scanned = False


def network(name: str) -> Callable[[NetworkBuilder], NetworkBuilder]:
    """Register ``builder(cardinalities, n_numeric, config) -> nn.Module`` as network ``name``
    (ValueError when another builder has that name already)."""

    def register(builder: NetworkBuilder) -> NetworkBuilder:
        known = _BUILDERS.get(name)
        if known is not None and known.__qualname__ != builder.__qualname__:
            raise ValueError(f"network {name!r} is declared twice ({known.__module__}, {builder.__module__})")
        _BUILDERS[name] = builder
        return builder

    return register


def registered_networks() -> Mapping[str, NetworkBuilder]:
    """Every network of this package's modules, by name (read-only)."""
    global _scanned
    if not _scanned:
        for module in pkgutil.iter_modules(__path__, prefix=f"{__name__}."):
            importlib.import_module(module.name)
        _scanned = True
    return MappingProxyType(_BUILDERS)


def build_network(name: str, cardinalities: Sequence[int], n_numeric: int, config: dict) -> nn.Module:
    """The registered network ``name`` for these inputs (ValueError naming the known ones)."""
    builders = registered_networks()
    if name not in builders:
        raise ValueError(f"unknown network {name!r}: registered networks are {', '.join(sorted(builders))}")
    return builders[name](cardinalities, n_numeric, config)
