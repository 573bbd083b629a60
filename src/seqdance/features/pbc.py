"""Periodic boxes: which ones to trust, and distances by the minimum image."""

from __future__ import annotations

import numpy as np

MIN_BOX_NM = 1.0  # shorter box vectors (the dummy ``CRYST1 1 1 1`` of NMR files) are ignored


def box_usable(box: np.ndarray | None) -> bool:
    """Whether ``box`` ((3, 3) or (F, 3, 3) box vectors, nm) is finite and at least 1 nm."""
    if box is None:
        return False
    lengths = np.linalg.norm(np.asarray(box), axis=-1)
    return bool(np.all(np.isfinite(lengths)) and np.all(lengths >= MIN_BOX_NM))


def minimum_image_distance(a: np.ndarray, b: np.ndarray, box: np.ndarray | None) -> float:
    """Distance between two points (3,), by the minimum image when a usable box is given."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if box_usable(box):
        box = np.asarray(box, dtype=np.float64)
        d = d - np.round(d @ np.linalg.inv(box)) @ box
    return float(np.linalg.norm(d))
