"""The build manifest: one CSV row per protein to extract.

Columns: ``name, source, kind, topology, trajectory, structure, label`` and optionally
``sequence`` (overrides the sequence read from the files), ``contacts`` (a GetContacts TSV for
an MD row) and ``chain`` (for an NMA row). ``kind`` is ``md`` (topology + trajectory) or
``nma`` (structure). Relative paths resolve against the manifest's folder.

An MD row of a source with a native reader (mdCATH, ATLAS, IDRome, PED, GPCRmd;
:mod:`seqdance.features.sources`) may give ``path`` (the download's file or folder) instead
of topology and trajectory, with optional ``temperatures`` and ``replicas`` (``320;348``,
``0;1;2``) and ``skip`` (frames dropped per replica). ``trajectory`` may list several files
separated by ``;`` (replicas, pooled).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from seqdance.errors import InputFileError
from seqdance.features.sources import NATIVE_SOURCES
from seqdance.schema import group_of_source

REQUIRED_COLUMNS = ("name", "source", "kind")
PATH_COLUMNS = ("topology", "structure", "contacts", "path")
KINDS = ("md", "nma")
LABELS = ("train", "test", "")


@dataclass(frozen=True)
class ManifestRow:
    name: str
    source: str
    kind: str
    topology: Path | None = None
    trajectory: Path | None = None
    structure: Path | None = None
    contacts: Path | None = None
    chain: str | None = None
    label: str = ""
    sequence: str | None = None
    path: Path | None = None  # a native source's download (file or folder)
    trajectories: tuple[Path, ...] = ()  # every trajectory (replicas), trajectory first
    temperatures: str = ""  # mdCATH temperatures, "320;348"
    replicas: str = ""  # replicas to pool, "0;1"
    skip: str = ""  # frames dropped at the start of each replica

    def problem(self) -> str | None:
        """Why this row cannot be built (one line), or None if it looks buildable."""
        if not self.name or "/" in self.name:
            return f"invalid name {self.name!r} (must be non-empty, without '/')"
        if self.kind not in KINDS:
            return f"unknown kind {self.kind!r} (use md or nma)"
        try:
            group = group_of_source(self.source)
        except KeyError as exc:
            return str(exc.args[0])
        if group.source_kind != self.kind:
            return f"source {self.source} is {group.source_kind} data, but kind is {self.kind}"
        if self.label not in LABELS:
            return f"label {self.label!r} is neither train nor test"
        if self.kind == "md" and self.path is not None:
            both = [c for c in ("topology", "trajectory", "structure") if getattr(self, c)]
            if both:
                return f"give path or {' and '.join(both)}, not both (which one is meant?)"
            if self.source.lower() not in {s.lower() for s in NATIVE_SOURCES}:
                return f"source {self.source} has no native reader for a path"
            if not self.path.exists():
                return f"path {self.path}: no such file or folder"
            if self.skip and not self.skip.isdigit():
                return f"skip {self.skip!r} is not a number of frames"
            return None
        if self.kind == "md" and self.path is None and (self.temperatures or self.replicas):
            return "temperatures and replicas are read only with a native source's path"
        needed = ("topology", "trajectory") if self.kind == "md" else ("structure",)
        for column in needed:
            path = getattr(self, column)
            if path is None:
                return f"kind {self.kind} needs a {column}"
            if not path.is_file():
                return f"{column} {path}: no such file"
        for extra in self.trajectories[1:]:
            if not extra.is_file():
                return f"trajectory {extra}: no such file"
        if self.contacts is not None and not self.contacts.is_file():
            return f"contacts {self.contacts}: no such file"
        return None


def _text(value: object) -> str:
    return (
        "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).strip()
    )


def read_manifest(path: str | os.PathLike) -> list[ManifestRow]:
    """Rows of a manifest CSV; raises :class:`InputFileError` for a file-level problem
    (unreadable, missing columns, duplicate names). Row-level problems are left to
    :meth:`ManifestRow.problem` so that the good rows can still be built."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such manifest")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(f"{path}: not a readable CSV ({exc})") from None
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputFileError(f"{path}: manifest lacks column(s) {', '.join(missing)}")
    names = table["name"].str.strip()
    duplicated = sorted(set(names[names.duplicated()]))
    if duplicated:
        raise InputFileError(f"{path}: duplicate name(s) {', '.join(duplicated[:5])}")

    base = path.parent
    rows = []
    for record in table.to_dict("records"):
        paths = {}
        for column in PATH_COLUMNS:
            value = _text(record.get(column))
            paths[column] = (base / value) if value else None  # absolute values stay absolute
        trajectories = tuple(
            base / part.strip()
            for part in _text(record.get("trajectory")).split(";")
            if part.strip()
        )
        paths["trajectory"] = trajectories[0] if trajectories else None
        rows.append(
            ManifestRow(
                name=_text(record["name"]),
                source=_text(record["source"]),
                kind=_text(record["kind"]).lower(),
                label=_text(record.get("label")).lower(),
                sequence=_text(record.get("sequence")).upper() or None,
                chain=_text(record.get("chain")) or None,
                trajectories=trajectories,
                temperatures=_text(record.get("temperatures")),
                replicas=_text(record.get("replicas")),
                skip=_text(record.get("skip")),
                **paths,
            )
        )
    return rows
