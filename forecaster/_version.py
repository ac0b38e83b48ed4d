"""The package version, in a module of its own so that any module can read it without
importing the package (which would import every module)."""

__version__ = "0.1.0"

DISTRIBUTION = "forecaster-rnn"
"""The distribution name: what ``pip install`` and :mod:`importlib.metadata` know the package by
(the import name and the command are ``forecaster``). The package index's ``forecaster`` is an
unrelated project: a pip command in a message names this one."""
