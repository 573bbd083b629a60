"""Read the protein C-alpha atoms of a structure file (PDB or mmCIF, optionally compressed:
.gz, .bz2, .xz)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqdance.errors import InputFileError
from seqdance.features.formats.compressed import compression, format_name, local_copy
from seqdance.residues import sequence_of

_CIF_SUFFIXES = (".cif", ".mmcif", ".bcif")


@dataclass(frozen=True)
class CAlphaChain:
    """C-alpha atoms of the protein residues of one structure (first model, first altloc)."""

    coords: np.ndarray  # (N, 3) float64, Angstrom
    sequence: str  # N one-letter codes, X for unknown residues
    chains: tuple[str, ...]  # (N,) chain id of each residue
    resids: tuple[str, ...]  # (N,) residue number with insertion code, as in the file

    def __len__(self) -> int:
        return len(self.sequence)


def structure_stem(path: str | os.PathLike) -> str:
    """File name without structure and compression suffixes: ``1abc.cif.gz`` -> ``1abc``."""
    name = Path(path).name
    name = name[: len(name) - len(compression(Path(path)))]
    for suffix in (".pdb", ".ent", ".cif", ".mmcif", ".bcif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def read_calphas(path: str | os.PathLike, chain: str | None = None) -> CAlphaChain:
    """Protein C-alpha atoms of the first model, optionally of one chain.

    Waters, ions, ligands and other non-protein residues are ignored (ProDy's ``calpha``
    selection: atoms named CA in protein residues). Raises :class:`InputFileError` when the
    file is missing, is not a structure, or has no protein C-alpha atom.
    """
    import prody

    prody.LOGGER.verbosity = "none"
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, not a structure file (give PDB/mmCIF files)")
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    name = format_name(path)
    # ProDy opens .gz itself; .bz2 and .xz are read from a decompressed copy
    source = path if compression(path) in ("", ".gz") else local_copy(path)
    kwargs = {"model": 1}
    if chain:
        kwargs["chain"] = chain
    try:
        if name.endswith(_CIF_SUFFIXES):
            atoms = prody.parseMMCIF(str(source), **kwargs)
        else:
            atoms = prody.parsePDB(str(source), **kwargs)
    except Exception as exc:  # ProDy raises assorted errors for non-structure files
        raise InputFileError(f"{path}: not a readable PDB/mmCIF structure ({exc})") from None
    if atoms is None or atoms.numAtoms() == 0:
        where = f" in chain {chain}" if chain else ""
        raise InputFileError(f"{path}: not a readable PDB/mmCIF structure (no atoms{where})")
    calphas = atoms.select("calpha")
    if calphas is None:
        where = f" in chain {chain}" if chain else ""
        raise InputFileError(f"{path}: no protein C-alpha atoms{where}")
    coords = np.asarray(calphas.getCoords(), dtype=np.float64)
    resnums = calphas.getResnums()
    icodes = calphas.getIcodes()
    resids = tuple(f"{n}{i.strip()}" for n, i in zip(resnums, icodes, strict=True))
    return CAlphaChain(
        coords=coords,
        sequence=sequence_of(calphas.getResnames()),
        chains=tuple(str(c) for c in calphas.getChids()),
        resids=resids,
    )
