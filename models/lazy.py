"""Names of a package imported from its submodules on first use (PEP 562), from one table.

A package whose submodules pull in heavy stacks (pandas, pgmpy, matplotlib, ONNX Runtime) keeps its import
cheap by resolving its public names lazily::

    __getattr__, __dir__ = lazy_exports(__name__, {"models.causal.anm": ["AdditiveNoiseModel"], ...})

The first ``package.Name`` imports the submodule and caches the value in the package; a name not in the table
raises ``AttributeError`` as usual. (Type checkers see the names through an ``if TYPE_CHECKING:`` import block.)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, table: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``table`` maps each submodule to the names it gives."""
    where = {name: module for module, names in table.items() for name in names}
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__
