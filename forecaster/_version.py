"""The package version, in a module of its own so that any module can read it without
importing the package (which would import every module)."""

__version__ = "0.1.0"

DISTRIBUTION = "forecaster-rnn"
"""The distribution name: what ``pip install`` and :mod:`importlib.metadata` know the package by
(the import name and the command are ``forecaster``). The package index's ``forecaster`` is an
unrelated project: a pip command in a message names this one."""

REINSTALL = (
    "`pip install --force-reinstall --no-deps <the forecaster_rnn wheel, or a clone's folder>`"
)
"""How to reinstall the package, for messages: it is not on the package index, so pip takes it
from its wheel or a clone (``--no-deps`` keeps the installed PyTorch build; see the
installation page)."""
