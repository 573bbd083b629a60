"""The learning rate as a pure function of the update number (facts section 4).

Linear warm-up from 0 to the peak over ``warmup_steps`` updates, linear decay to
``final_lr_fraction`` x peak at ``decay_fraction`` of all updates, constant afterwards.
Update ``n`` (1-based) uses ``learning_rate(n)``, as the authors' scheduler stepped before
the optimizer; nothing but the update count is needed to resume it.
"""

from __future__ import annotations


def learning_rate(
    update: int,
    peak: float,
    total_steps: int,
    warmup_steps: int,
    decay_fraction: float = 0.9,
    final_fraction: float = 0.1,
) -> float:
    """Learning rate of update number ``update`` (1-based).

    Parameters
    ----------
    update : int
        The update being made, counted from 1.
    peak : float
        Peak learning rate (reached at ``warmup_steps``).
    total_steps : int
        All updates of the run; the decay ends at ``decay_fraction * total_steps``.
    warmup_steps : int
    decay_fraction, final_fraction : float
    """
    decay_end = decay_fraction * total_steps
    if update < warmup_steps:
        factor = update / warmup_steps
    elif update < decay_end:
        progress = (update - warmup_steps) / (decay_end - warmup_steps)
        factor = 1.0 - (1.0 - final_fraction) * progress
    else:
        factor = final_fraction
    return factor * peak
