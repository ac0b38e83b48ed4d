"""Public names of a package imported on first use (PEP 562 module ``__getattr__`` and
``__dir__``).

``import forecaster`` (and ``forecaster.jobs``, which the ``forecaster`` command line imports
before it parses its arguments) must not load PyTorch, scikit-learn and the rest before a name
that needs them is used: a package lists where each public name lives, and the name's module is
imported when the name is first read (``forecaster.LSTMForecaster``, ``from forecaster import
LSTMForecaster``), then the value is kept in the package so that later reads cost nothing.
A subpackage or submodule (``forecaster.tracking``) is imported when it is first read as an
attribute, as it was when the package imported everything eagerly. Any other name raises
``AttributeError`` naming the package, as a module without it does.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str,
    origins: Mapping[str, str],
    public: Iterable[str],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of a package with lazily imported names.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    origins : Mapping[str, str]
        Public name -> the module that defines it (``"forecaster.data"``), or the module
        itself for a submodule (the name is then the module's last component).
    public : Iterable[str]
        The package's ``__all__`` (listed by ``dir``).

    Returns
    -------
    tuple of callables
        ``(__getattr__, __dir__)``, to be assigned to those names in the package.
    """
    names = dict(origins)
    listed = sorted(set(public) | set(names))

    def __getattr__(name: str) -> Any:
        namespace = vars(sys.modules[package])
        origin = names.get(name)
        if origin is not None:
            module = importlib.import_module(origin)
            value = module if origin == f"{package}.{name}" else getattr(module, name)
        elif not name.startswith("__") and _is_submodule(f"{package}.{name}"):
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return namespace.setdefault(name, value)

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(listed))

    return __getattr__, __dir__


def _is_submodule(name: str) -> bool:
    """Whether ``name`` is a module or package that can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
