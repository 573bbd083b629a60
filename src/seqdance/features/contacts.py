"""Contacts of a trajectory file: GetContacts' dynamic-contacts lines, chunk by chunk.

:func:`detect_contacts` opens a topology and trajectory
(:func:`seqdance.features.trajectory.open_system`), prepares a
:class:`~seqdance.features.contact_detector.ContactDetector` on the first frame and streams
the lines of every frame (:class:`ContactStream`); writing them is
:func:`seqdance.features.getcontacts.write_contacts`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from seqdance.errors import SeqDanceError
from seqdance.errors import one_line as _one_line
from seqdance.features.contact_detector import ContactDetector
from seqdance.features.contact_rules import (
    ContactCriteria,
    header_itypes,
    parse_itypes,
    select_atoms,
)
from seqdance.features.getcontacts import ContactLine, ContactsHeader
from seqdance.features.trajectory import open_system
from seqdance.schema import INTERACTIONS


class ContactStream(Iterator[ContactLine]):
    """Contact lines of a trajectory, read and detected one chunk of frames at a time.

    An iterator of :class:`ContactLine`; also carries the :class:`ContactDetector` (its
    ``warnings``) and calls ``on_frames(n)`` after each chunk of ``n`` frames.
    """

    def __init__(
        self,
        detector: ContactDetector,
        blocks: Iterator[np.ndarray],
        stride: int,
        on_frames: Callable[[int], None] | None = None,
    ) -> None:
        self.detector = detector
        self._lines = self._generate(blocks, stride, on_frames)

    @property
    def warnings(self) -> list[str]:
        return self.detector.warnings

    def _generate(
        self, blocks: Iterator[np.ndarray], stride: int, on_frames: Callable[[int], None] | None
    ) -> Iterator[ContactLine]:
        done = 0
        for block in blocks:
            yield from self.detector.detect(block, first_frame=done * stride, stride=stride)
            done += len(block)
            if on_frames is not None:
                on_frames(len(block))

    def __iter__(self) -> ContactStream:
        return self

    def __next__(self) -> ContactLine:
        return next(self._lines)


def detect_contacts(
    topology_path: str | os.PathLike,
    trajectory_path: str | os.PathLike,
    itypes: Sequence[str] = INTERACTIONS,
    stride: int = 1,
    selection: str = "protein",
    chunk_size: int = 100,
    *,
    criteria: ContactCriteria | None = None,
    on_frames: Callable[[int], None] | None = None,
    pbc: str = "cluster",
) -> tuple[ContactsHeader, ContactStream]:
    """Stream GetContacts lines for a trajectory file, ``chunk_size`` frames at a time.

    The first chunk is read before returning, so a trajectory that does not fit its
    topology fails here, not half-way through writing. Frame 0 is the reference for the
    hydrophobic filter and disulfides; a PDB/mmCIF/GRO topology's own coordinates drive
    the distance bond rule. ``pbc``: periodic imaging, "cluster" (default), "whole" or
    "none" (:mod:`seqdance.features.imaging`).

    Returns
    -------
    header : ContactsHeader
        ``total_frames`` counts the frames analysed (after ``stride``).
    lines : ContactStream, an iterator of ContactLine by frame (``lines.warnings``).
    """
    if stride < 1:
        raise SeqDanceError(f"stride must be >= 1, got {stride}")
    if chunk_size < 1:
        raise SeqDanceError(f"chunk_size must be >= 1, got {chunk_size}")
    itypes = parse_itypes(itypes)
    prepared, source = open_system(topology_path, trajectory_path)
    source.set_pbc(pbc)
    topology = prepared.topology
    try:
        sel = select_atoms(topology, selection)
    except Exception as exc:  # MDTraj raises several types for a bad expression
        raise SeqDanceError(f"bad selection {selection!r}: {_one_line(exc)}") from None
    if source.available is not None:  # atoms present in every model (PED ensembles)
        sel = np.intersect1d(sel, source.available)
    if sel.size == 0:
        raise SeqDanceError(f"selection {selection!r} matches no atoms")
    sub = topology.subset(sel)
    own = prepared.xyz[sel] if prepared.xyz is not None else None
    first = source.first_frame(sel, sub, own, prepared.box)
    bonds_from = source.reference_xyz  # the topology's own coordinates, made whole
    detector = ContactDetector(sub, first, itypes, "all", bond_xyz=bonds_from, criteria=criteria)
    detector.warnings[:0] = list(source.warnings) + list(prepared.notes)
    total_frames = source.frames_after(stride)
    if total_frames is None:  # formats without a frame count: count by reading once
        total_frames = sum(len(b.xyz) for b in source.blocks(sel, chunk_size, stride, sub))
        source = open_system(prepared, trajectory_path)[1]
        source.set_pbc(pbc)
        source.first_frame(sel, sub, own, prepared.box)
    header = ContactsHeader(
        total_frames=total_frames, beg=0, stride=stride, interaction_types=header_itypes(itypes)
    )
    blocks = (b.xyz for b in source.blocks(sel, chunk_size, stride, sub))
    stream = ContactStream(detector, blocks, stride, on_frames)
    stream.source = source
    return header, stream
