"""Periodic imaging of the selected atoms: molecules made whole, a complex kept together.

Three pure steps on frames whose box is known (all in nm, box vectors as rows):

1. **whole** (:func:`whole_shifts`): every molecule is made whole along a spanning tree of its
   bonds (topology bonds first; an atom without bonds hangs on its residue's anchor, and
   consecutive polymer residues of a chain are linked anchor to anchor, so C-alpha traces
   stay whole too). An atom is moved by the whole box vectors that make its tree edge
   minimal. A molecule that is already whole has every edge minimal: nothing moves.
2. **cluster** (:func:`cluster_moves`, first frame of each trajectory part): the polymer
   molecules (chains, or chains joined by a disulfide) are placed next to each other, as
   ``gmx trjconv -pbc cluster``: starting from the largest, the molecule nearest (by the
   distance between residue anchors, over all periodic images) to the ones already placed is
   moved by the box vectors of that nearest image, until all are placed.
3. **continuity** (:func:`follow_moves`, later frames): the centre of each further polymer
   molecule, relative to the first one's, is kept within half a box of where it was in the
   previous frame (``-pbc nojump`` between chains), so a chain never jumps by a box vector.

The largest polymer molecule is never moved by a box vector; non-polymer molecules (ligands,
ions, water in the selection) are made whole but stay where they are. Frames in which
nothing moves keep their exact input values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree

from seqdance.errors import SeqDanceError
from seqdance.features.topology import is_polymer

PBC_MODES = ("cluster", "whole", "none")  # --pbc: full imaging, molecules whole only, off
TIE_NM = 1e-9  # a box-vector move must beat staying put by more than this
CONTACT_NM = 1.0  # a molecule this close (anchor to anchor) to the placed ones stays put
TRACE_NAMES = ("CA", "BB")  # single-atom residues of a coarse-grained chain


def check_pbc_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`PBC_MODES`, else a one-line error."""
    if mode not in PBC_MODES:
        raise SeqDanceError(f"--pbc must be one of {', '.join(PBC_MODES)} (got {mode!r})")
    return mode


@dataclass(frozen=True)
class Molecules:
    """Spanning trees, molecules and residue anchors of the selected atoms.

    Attributes
    ----------
    parent : (n_atoms,) tree parent of each atom, -1 for the root of a molecule
    levels : atoms at tree depth 1, 2, ... (each array's parents are at the level before)
    molecule : (n_atoms,) molecule index of each atom, 0..M-1
    anchor : (R,) atom index of each residue's anchor (C-alpha, else its first atom)
    anchor_molecule : (R,) molecule of each anchor
    polymers : (P,) molecules holding a polymer residue, the largest (most atoms) first
    """

    parent: np.ndarray
    levels: tuple[np.ndarray, ...]
    molecule: np.ndarray
    anchor: np.ndarray
    anchor_molecule: np.ndarray
    polymers: np.ndarray

    @classmethod
    def of(cls, topology) -> Molecules:
        """From an MDTraj topology (its bonds, residues and chains)."""
        n = topology.n_atoms
        edges, weights = [], []
        for a, b in topology.bonds:
            edges.append((a.index, b.index))
            weights.append(1.0)
        anchor, polymer, chain = [], [], []
        for residue in topology.residues:
            atoms = [a.index for a in residue.atoms]
            names = [a.name for a in residue.atoms]
            first = atoms[names.index("CA")] if "CA" in names else atoms[0]
            anchor.append(first)
            chain.append(residue.chain.index)
            polymer.append(  # a C-alpha (or Martini BB) trace counts; water and ions do not
                is_polymer(names, residue.name)
                or len(atoms) == 1
                and names[0] in TRACE_NAMES
                and residue.chain.n_residues > 1
            )
            edges.extend((a, first) for a in atoms if a != first)
            weights.extend([2.0] * (len(atoms) - 1))
        anchor_arr = np.asarray(anchor, np.int64)
        polymer_arr, chain_arr = np.asarray(polymer, bool), np.asarray(chain, np.int64)
        for c in np.unique(chain_arr):
            rows = np.flatnonzero((chain_arr == c) & polymer_arr)
            edges.extend(zip(anchor_arr[rows[:-1]], anchor_arr[rows[1:]], strict=True))
            weights.extend([3.0] * (len(rows) - 1))
        parent, depth, molecule = _spanning_trees(n, edges, weights)
        levels = tuple(np.flatnonzero(depth == d) for d in range(1, int(depth.max(initial=0)) + 1))
        sizes = np.bincount(molecule, minlength=int(molecule.max(initial=-1)) + 1)
        poly = np.unique(molecule[anchor_arr[polymer_arr]])
        poly = poly[np.argsort(-sizes[poly], kind="stable")]
        return cls(parent, levels, molecule, anchor_arr, molecule[anchor_arr], poly)


def _spanning_trees(n: int, edges: list, weights: list) -> tuple[np.ndarray, ...]:
    """Parent, depth and component of every node of a minimum spanning forest (lighter edges,
    i.e. real bonds, first); each component's root is its lowest-numbered node."""
    parent = np.full(n, -1, np.int64)
    depth = np.zeros(n, np.int64)
    if n == 0:
        return parent, depth, np.zeros(0, np.int64)
    pairs = np.asarray(edges, np.int64).reshape(-1, 2)
    w = np.asarray(weights, np.float64)
    keep = pairs[:, 0] != pairs[:, 1]
    pairs, w = np.sort(pairs[keep], axis=1), w[keep]
    order = np.lexsort((w, pairs[:, 1], pairs[:, 0]))  # lightest duplicate first
    pairs, w = pairs[order], w[order]
    first = np.ones(len(pairs), bool)
    first[1:] = np.any(pairs[1:] != pairs[:-1], axis=1)
    pairs, w = pairs[first], w[first]
    graph = coo_matrix((w, (pairs[:, 0], pairs[:, 1])), shape=(n, n)).tocsr()
    forest = minimum_spanning_tree(graph)
    forest = forest + forest.T
    _, component = connected_components(forest, directed=False)
    seen = np.zeros(n, bool)
    for root in range(n):
        if seen[root]:
            continue
        order, pred = breadth_first_order(forest, root, directed=False)
        seen[order] = True
        for atom in order[1:]:  # BFS order: a parent comes before its children
            parent[atom] = pred[atom]
            depth[atom] = depth[pred[atom]] + 1
    return parent, depth, component.astype(np.int64)


def lattice_moves(d: np.ndarray, box: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """Whole box vectors (..., 3) to add to separations ``d`` (F, m, 3) to make them minimal
    (rounded fractional coordinates: exact for rectangular boxes and short separations)."""
    n = -np.round(np.einsum("fmk,fkj->fmj", d, inv))
    return np.einsum("fmj,fjk->fmk", n, box)


def whole_shifts(x: np.ndarray, box: np.ndarray, inv: np.ndarray, mols: Molecules) -> np.ndarray:
    """Shifts (F, n, 3) that make every molecule whole along its spanning tree.

    ``x`` (F, n, 3) float64 coordinates; ``box``/``inv`` (F, 3, 3) box vectors and inverse.
    """
    shift = np.zeros_like(x)
    children = np.flatnonzero(mols.parent >= 0)
    if children.size == 0:
        return shift
    step = np.zeros_like(x)
    step[:, children] = lattice_moves(x[:, children] - x[:, mols.parent[children]], box, inv)
    if not step.any():  # every tree edge is minimal: already whole
        return shift
    for level in mols.levels:
        shift[:, level] = shift[:, mols.parent[level]] + step[:, level]
    return shift


def molecule_centres(x: np.ndarray, mols: Molecules) -> np.ndarray:
    """Mean anchor position (F, P, 3) of each polymer molecule (in ``mols.polymers`` order)."""
    return np.stack(
        [x[:, mols.anchor[mols.anchor_molecule == m]].mean(axis=1) for m in mols.polymers],
        axis=1,
    )


def nearest_image(a: np.ndarray, b: np.ndarray, box: np.ndarray) -> tuple[float, np.ndarray]:
    """Smallest distance between point sets ``a`` (m, 3) and ``b`` (q, 3) over the periodic
    images of ``a``, and the box-vector move (3,) of ``a`` that gives it (zero on a tie).

    Every pair's rounded image is tried, and for a triclinic box its 26 neighbours too.
    """
    inv = np.linalg.inv(box)
    d = (a[:, None, :] - b[None, :, :]).reshape(-1, 3)  # (m*q, 3)
    counts = np.unique(-np.round(d @ inv), axis=0)
    if np.any(np.abs(box - np.diag(np.diag(box))) > 0):
        grid = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
        counts = np.unique((counts[:, None, :] + grid[None]).reshape(-1, 3), axis=0)
    counts = np.vstack([np.zeros((1, 3)), counts])  # staying put is tried first
    best, move = np.inf, np.zeros(3)
    for n in counts:
        shift = n @ box
        dist = float(np.sqrt(np.min(np.sum((d + shift) ** 2, axis=1))))
        if dist < best - TIE_NM:
            best, move = dist, shift
    return best, move


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest distance between point sets ``a`` (m, 3) and ``b`` (q, 3), no box."""
    return float(np.sqrt(np.min(np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1))))


def cluster_moves(x: np.ndarray, box: np.ndarray, mols: Molecules) -> np.ndarray:
    """Box-vector move (P, 3) of each polymer molecule that puts them next to each other in one
    frame ``x`` (n, 3) of whole molecules, as ``gmx trjconv -pbc cluster``: the first (largest)
    stays; then, repeatedly, the molecule nearest to those placed goes to that nearest image.
    A molecule that is already within :data:`CONTACT_NM` of the placed ones (or no nearer in
    any other image) stays where it is, so a complex that is together is never moved.
    """
    groups = [x[mols.anchor[mols.anchor_molecule == m]] for m in mols.polymers]
    p = len(groups)
    dist = np.full((p, p), np.inf)
    rel = np.zeros((p, p, 3))  # rel[k, j]: move of k that puts it nearest to j (unmoved)
    for k in range(p):
        for j in range(k):
            dist[k, j], rel[k, j] = nearest_image(groups[k], groups[j], box)
            dist[j, k], rel[j, k] = dist[k, j], -rel[k, j]
    moves = np.zeros((p, 3))
    placed = np.zeros(p, bool)
    placed[0] = True
    stay: dict[tuple[int, int], float] = {}  # distance of k, unmoved, to j where j was placed
    for _ in range(p - 1):
        choice = (np.inf, -1, np.zeros(3))
        for k in np.flatnonzero(~placed):
            js = np.flatnonzero(placed)
            for j in js:
                if (k, j) not in stay:
                    stay[k, j] = _distance(groups[k], groups[j] + moves[j])
            here = min(stay[k, j] for j in js)
            j = js[np.argmin(dist[k, js])]
            if here <= CONTACT_NM or here <= dist[k, j] + TIE_NM:
                candidate = (here, k, np.zeros(3))  # already next to the complex: stays
            else:
                candidate = (dist[k, j], k, moves[j] + rel[k, j])
            if candidate[0] < choice[0]:
                choice = candidate
        _, k, move = choice
        moves[k] = move
        placed[k] = True
    return moves


def follow_moves(
    offsets: np.ndarray, box: np.ndarray, inv: np.ndarray, previous: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Box-vector moves (F, P, 3) that keep each molecule's centre offset from the first
    molecule continuous from ``previous`` (P, 3), the offsets of the frame before.

    ``offsets`` (F, P, 3): centre of each polymer molecule minus the first one's, per frame.
    Returns the moves and the last frame's offsets after the moves.
    """
    moves = np.zeros_like(offsets)
    for f in range(len(offsets)):
        moves[f] = lattice_moves((offsets[f] - previous)[None], box[f : f + 1], inv[f : f + 1])[0]
        previous = offsets[f] + moves[f]
    return moves, previous


@dataclass
class ImagingState:
    """What continuity needs between chunks of one trajectory part; counts for the note."""

    previous: np.ndarray | None = None  # (P, 3) offsets of the last frame, None at a start
    framed: int = 0  # frames that had a usable box
    whole: int = 0  # frames in which a molecule was made whole
    placed: int = 0  # frames in which a chain was moved next to the complex

    def note(self) -> str | None:
        """The note on what was done, or None when nothing moved."""
        if not (self.whole or self.placed):
            return None
        parts = []
        if self.whole:
            parts.append(f"molecules broken across it were made whole in {self.whole:,}")
        if self.placed:
            parts.append(
                f"chains were moved by box vectors next to the rest of the complex (nearest "
                f"image, continuous between frames) in {self.placed:,}"
            )
        return f"periodic box: {' and '.join(parts)} of {self.framed:,} frames"


def image_frames(
    xyz: np.ndarray, box: np.ndarray, mols: Molecules, mode: str, state: ImagingState
) -> np.ndarray:
    """Frames ``xyz`` (F, n, 3) made whole (``mode`` "whole") and their polymer molecules kept
    together and continuous (``mode`` "cluster"); ``box`` (F, 3, 3). Frames where nothing
    moves are returned exactly as given; ``state`` carries continuity and counts."""
    if mode == "none" or len(xyz) == 0:
        return xyz
    x = np.asarray(xyz, dtype=np.float64)
    b = np.asarray(box, dtype=np.float64)
    inv = np.linalg.inv(b)
    shift = whole_shifts(x, b, inv, mols)
    broken = np.abs(shift).max(axis=(1, 2), initial=0) > 0
    placed = np.zeros(len(x), bool)
    if mode == "cluster" and len(mols.polymers) > 1:
        centres = molecule_centres(x + shift, mols)  # (F, P, 3)
        offsets = centres - centres[:, :1]
        moves = np.zeros_like(offsets)
        start = 0
        if state.previous is None:
            moves[0] = cluster_moves(x[0] + shift[0], b[0], mols)
            state.previous = offsets[0] + moves[0]
            start = 1
        if start < len(x):
            moves[start:], state.previous = follow_moves(
                offsets[start:], b[start:], inv[start:], state.previous
            )
        placed = np.abs(moves).max(axis=(1, 2)) > 0
        if placed.any():
            rank = np.full(int(mols.molecule.max()) + 1, -1)
            rank[mols.polymers] = np.arange(len(mols.polymers))
            of_atom = rank[mols.molecule]
            atoms = of_atom >= 0
            shift[:, atoms] += moves[:, of_atom[atoms]]
    state.framed += len(x)
    state.whole += int(broken.sum())
    state.placed += int(placed.sum())
    moved = broken | placed
    if not moved.any():
        return xyz
    out = np.array(xyz, copy=True)
    out[moved] = (x[moved] + shift[moved]).astype(out.dtype)
    return out
