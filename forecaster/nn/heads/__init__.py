"""The forecast heads of :class:`~forecaster.nn.recurrent.RecurrentNet`, one module each,
behind the :class:`~forecaster.nn.heads.base.Head` interface."""

from __future__ import annotations

from forecaster.nn.heads.base import ChannelwiseHead, Head
from forecaster.nn.heads.direct import DirectHead
from forecaster.nn.heads.recursive import RecursiveHead
from forecaster.nn.heads.segment import SegmentHead
from forecaster.nn.heads.seq2seq import Seq2SeqHead

__all__ = [
    "HEAD_TYPES",
    "ChannelwiseHead",
    "DirectHead",
    "Head",
    "RecursiveHead",
    "SegmentHead",
    "Seq2SeqHead",
]

HEAD_TYPES: dict[str, Head] = {
    head.name: head for head in (SegmentHead(), DirectHead(), Seq2SeqHead(), RecursiveHead())
}
"""Every head by its name (the ``head`` argument of a network)."""
