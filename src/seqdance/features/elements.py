"""Element tables the readers and the topology share: ions by residue or atom name, water
residue names, element symbols a PDB element column may hold, and typing by atomic mass."""

from __future__ import annotations

WATER = frozenset(
    {"HOH", "WAT", "SOL", "TIP3", "TIP4", "TIP5", "TIP3P", "SPC", "T3P", "T4P", "TP3", "H2O", "DOD"}
)
ION_ELEMENTS = {
    "NA": "Na",
    "SOD": "Na",
    "NA+": "Na",
    "CL": "Cl",
    "CLA": "Cl",
    "CL-": "Cl",
    "K": "K",
    "POT": "K",
    "K+": "K",
    "CA": "Ca",
    "CAL": "Ca",
    "CA2+": "Ca",
    "MG": "Mg",
    "MG2+": "Mg",
    "ZN": "Zn",
    "ZN2": "Zn",
    "ZN2+": "Zn",
    "CS": "Cs",
    "CES": "Cs",
    "LI": "Li",
    "LIT": "Li",
    "RB": "Rb",
    "FE": "Fe",
    "FE2": "Fe",
    "CU": "Cu",
    "MN": "Mn",
    "CD": "Cd",
    "NI": "Ni",
    "BR": "Br",
    "IOD": "I",
    "F": "F",
}
_MASSES = (
    ("H", 1.008),
    ("H", 2.014),
    ("C", 12.011),
    ("N", 14.007),
    ("O", 15.999),
    ("S", 32.06),
    ("P", 30.974),
    ("Na", 22.99),
    ("Cl", 35.45),
    ("K", 39.098),
    ("Ca", 40.078),
    ("Mg", 24.305),
    ("Zn", 65.38),
    ("Fe", 55.845),
    ("Cu", 63.546),
    ("Cs", 132.905),
    ("Li", 6.94),
    ("F", 18.998),
    ("Br", 79.904),
    ("I", 126.904),
    ("Mn", 54.938),
    ("Se", 78.971),
    ("Rb", 85.468),
)
# symbols a PDB element column may hold; anything else there is junk, not typing
ELEMENT_SYMBOLS = frozenset(
    {"H", "C", "N", "O", "S", "P", "D"}
    | {e.upper() for e in ION_ELEMENTS.values()}
    | {"SE", "F", "B", "I", "BR", "CO", "HG", "CD", "NI", "MN", "AL", "SI", "AU", "AG", "PT"}
)


def element_from_mass(mass: float) -> str:
    """Element symbol of an atomic mass (within 0.1 u of a known one), else ``""``."""
    symbol, ref = min(_MASSES, key=lambda item: abs(item[1] - mass))
    return symbol if abs(ref - mass) < 0.1 else ""
