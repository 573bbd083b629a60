"""How a relative-change score is computed: one frozen :class:`ScoreOptions`.

``seqdance score``, ``scan``, ``explain`` and ``benchmark`` build one and pass it down to
:func:`~seqdance.inference.score.score_sequences` (and the functions above it), so every path
reads the same options and checks the window rule in the same place
(:meth:`ScoreOptions.windowed`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqdance.errors import SeqDanceError

EPSILON = 0.01  # keeps |P_wt| + eps away from zero (authors' value)
DEFAULT_TOKEN_BUDGET = 4096


@dataclass(frozen=True)
class ScoreOptions:
    """Options of the relative-change score.

    Attributes
    ----------
    residues_only : bool
        Average over the L residues (L x L pairs) instead of all T = L + 2 output positions
        (``<cls>``/``<eos>`` included, the authors' notebook).
    window : int, optional
        None (the authors): every sequence in one pass. Else the longest sequence one pass
        takes; longer ones use overlapping windows merged as ``predict`` does (needs
        ``residues_only``).
    token_budget : int
        Tokens per forward pass (batch size x (L + 2)).
    autocast : torch.dtype, optional
        Low precision (e.g. bfloat16) for the trunk's matrix products (see
        :func:`~seqdance.inference.score.score_sequences`); None: float32.
    eps : float
        Added to ``|P_wt|`` in the denominator of the relative change.
    """

    residues_only: bool = False
    window: int | None = None
    token_budget: int = DEFAULT_TOKEN_BUDGET
    autocast: torch.dtype | None = None
    eps: float = EPSILON

    def windowed(self, length: int) -> bool:
        """Whether a wild type of ``length`` residues runs in windows (the window rule).

        Raises
        ------
        SeqDanceError
            When it would run in windows without ``residues_only``: windows hold no
            ``<cls>``/``<eos>`` rows, so windowed scores are residue means.
        """
        windowed = self.window is not None and length > self.window
        if windowed and not self.residues_only:
            raise SeqDanceError(
                f"the wild type has {length} residues, more than the window ({self.window}): "
                "windowed scores average over residues only; pass residues_only "
                "(--residues-only) or no window"
            )
        return windowed
