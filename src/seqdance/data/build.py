"""Build ``DIR/features.h5`` + ``DIR/index.csv`` from a manifest, resumably.

1. Each protein is extracted by a worker (local processes, or a Dask cluster) and written to
   ``DIR/staging/{name}.npz`` atomically: a protein is either fully staged or not at all.
2. The staged proteins are merged with those already in ``features.h5`` into a temporary
   HDF5 file that replaces ``features.h5`` by a rename; then ``index.csv`` is rewritten the
   same way, and the merged staging files are removed.

A build killed at any moment therefore leaves a valid ``features.h5`` (old or new) plus
staged proteins; the next run skips everything already staged or stored and finishes the job.
A run with nothing new to do does not touch any file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd

from seqdance.data.manifest import ManifestRow, read_manifest
from seqdance.data.store import (
    FEATURES_FILE,
    INDEX_FILE,
    STAGING_DIR,
    ProteinRecord,
    encode_md,
    encode_nma,
    merge_into,
    read_index,
    read_staged,
    res_key,
    staging_path,
    stored_names,
    write_index,
    write_staged,
)
from seqdance.errors import InputFileError, SeqDanceError
from seqdance.features.md import md_features
from seqdance.features.nma import nma_features_of_file
from seqdance.features.sources import open_source, options_from
from seqdance.features.trajectory import open_system
from seqdance.schema import group_of_source
from seqdance.utils.io import is_disk_failure
from seqdance.utils.parallel import TaskResult, describe_error, run_batch
from seqdance.utils.progress import progress_bar

LOCK_FILE = ".build.lock"


@dataclass(frozen=True)
class BuildConfig:
    """How to run a build."""

    workers: int = 1  # local worker processes (ignored with a scheduler)
    scheduler: str | None = None  # Dask scheduler address, e.g. tcp://10.0.0.5:8786
    stride: int = 1  # use every stride-th MD frame
    progress: bool = True
    keep_staging: bool = False  # keep DIR/staging/*.npz after merging
    connect_timeout: float = 20.0  # seconds to reach the Dask scheduler
    interaction_cells: str = "listed"  # MD contacts at one cell per line (the authors) or "both"

    def check(self) -> None:
        """Every option checked before the output folder is made (a one-line error)."""
        if self.workers < 1 or self.stride < 1:
            raise SeqDanceError(f"--workers and --stride must be 1 or more, not "
                                f"{self.workers} and {self.stride}")  # fmt: skip
        if self.interaction_cells not in ("listed", "both"):
            raise SeqDanceError(f"interaction cells must be 'listed' or 'both', not "
                                f"{self.interaction_cells!r}")  # fmt: skip
        if self.scheduler is None:
            return
        if self.workers != 1:
            raise SeqDanceError(
                f"--workers {self.workers} has no effect with --scheduler (the scheduler's "
                "workers run the build); leave out one of them"
            )
        _check_scheduler_address(self.scheduler)


@dataclass
class BuildReport:
    """What a build did."""

    features_path: Path
    index_path: Path
    built: list[str] = field(default_factory=list)  # extracted in this run
    merged: list[str] = field(default_factory=list)  # added to features.h5 in this run
    skipped: list[str] = field(default_factory=list)  # already stored or staged before
    failed: dict[str, str] = field(default_factory=dict)  # name -> one-line reason
    warnings: dict[str, list[str]] = field(default_factory=dict)  # name -> e.g. truncated files

    @property
    def ok(self) -> bool:
        return not self.failed


# ----------------------------------------------------------------------------- one protein


def extract_record(row: ManifestRow, stride: int = 1, cells: str = "listed") -> ProteinRecord:
    """Extract one manifest row's features in stored layout (``cells``: MD interaction cells,
    see :func:`seqdance.features.getcontacts.residue_pair_counts`)."""
    return _extract(row, stride, cells)[0]


def _extract(
    row: ManifestRow, stride: int = 1, cells: str = "listed"
) -> tuple[ProteinRecord, list[str]]:
    """The record and the extraction's warnings (a truncated trajectory, say)."""
    warnings: list[str] = []
    problem = row.problem()
    if problem:
        raise SeqDanceError(problem)
    if row.kind == "md":
        topology, trajectory = _md_input(row)
        md = md_features(topology, trajectory, contacts=row.contacts, stride=stride,
                         interaction_cells=cells)  # fmt: skip
        warnings = list(md.warnings)
        res, pair = encode_md(md.residues, md.pair)
        sequence = md.sequence
    else:
        nma = nma_features_of_file(row.structure, chain=row.chain)
        res, pair = encode_nma(nma.gnm_msf, nma.anm_cor)
        sequence = nma.sequence
    if row.sequence is not None:
        if len(row.sequence) != len(sequence):
            raise SeqDanceError(
                f"manifest sequence has {len(row.sequence)} residues, the files {len(sequence)}"
            )
        sequence = row.sequence
    record = ProteinRecord(row.name, sequence, row.source, row.kind, res, pair, label=row.label)  # type: ignore[arg-type]
    return record, warnings


def _md_input(row: ManifestRow):
    """What ``md_features`` reads for an MD row: a native source's download, or files."""
    if row.path is not None:
        options = options_from(
            row.temperatures or None, row.replicas or None, int(row.skip) if row.skip else None
        )
        return open_source(row.source, row.path, options)
    trajectories = list(row.trajectories) or [row.trajectory]
    if row.skip:
        return open_system(row.topology, trajectories, skip=int(row.skip))
    return row.topology, trajectories if len(trajectories) > 1 else trajectories[0]


def stage_row(
    row: ManifestRow, out_dir: str | os.PathLike, stride: int = 1, cells: str = "listed"
) -> int:
    """Extract one row and stage it as ``out_dir/staging/{name}.npz``; returns its length."""
    return _stage(row, out_dir, stride, cells)[0]


def _stage(
    row: ManifestRow, out_dir: str | os.PathLike, stride: int = 1, cells: str = "listed"
) -> tuple[int, list]:
    """:func:`stage_row`, also returning the extraction's warnings for the build report."""
    record, warnings = _extract(row, stride=stride, cells=cells)
    write_staged(record, staging_path(out_dir, row.name))
    return record.length, warnings


def _stage_row_safely(row: ManifestRow, out_dir: str, stride: int, cells: str) -> TaskResult:
    """Dask task: never raises, so that one bad protein does not fail the whole graph."""
    try:
        return TaskResult(row, value=_stage(row, out_dir, stride, cells))
    except Exception as exc:  # noqa: BLE001
        if is_disk_failure(exc):  # the output disk, not this protein: stop the build
            raise
        return TaskResult(row, error=describe_error(exc))


# ----------------------------------------------------------------------------- runners


def _check_scheduler_address(address: str) -> None:
    """A Dask scheduler address that Dask can parse (``tcp://HOST:PORT``), else one line."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise SeqDanceError(
            f"--scheduler {address!r} is not a Dask scheduler address ({exc}); give "
            "tcp://HOST:PORT, as the scheduler prints it"
        ) from None


def _run_dask(rows: list[ManifestRow], out_dir: Path, config: BuildConfig) -> list[TaskResult]:
    from distributed import Client, as_completed
    try:
        client = Client(config.scheduler, timeout=config.connect_timeout)
    except (OSError, TimeoutError) as exc:
        raise SeqDanceError(
            f"cannot reach the Dask scheduler at {config.scheduler} ({exc})"
        ) from None
    results = []
    with client:
        futures = client.map(
            _stage_row_safely,
            rows,
            out_dir=str(out_dir.resolve()),
            stride=config.stride,
            cells=config.interaction_cells,
            key=[f"seqdance-stage-{row.name}-{os.getpid()}" for row in rows],
            pure=False,
        )
        bar = progress_bar(total=len(rows), desc="build", unit="protein", enabled=config.progress)
        try:
            for future in as_completed(futures):
                try:
                    results.append(future.result())
                except Exception as exc:  # noqa: BLE001 - a worker died, etc.
                    if is_disk_failure(exc):
                        raise
                    row = rows[futures.index(future)]
                    results.append(TaskResult(row, error=describe_error(exc)))
                bar.update()
        finally:
            bar.close()
    return results


def _run_local(rows: list[ManifestRow], out_dir: Path, config: BuildConfig) -> list[TaskResult]:
    fn: Callable = partial(
        _stage, out_dir=out_dir, stride=config.stride, cells=config.interaction_cells
    )
    return run_batch(fn, rows, workers=config.workers, desc="build", progress=config.progress)


# ----------------------------------------------------------------------------- build


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Delete temporary files that a killed run left (they are never read)."""
    for folder in (out_dir, out_dir / STAGING_DIR):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp*"):
                tmp.unlink(missing_ok=True)


def _stored(features_path: Path) -> list[str]:
    if not features_path.exists():
        return []
    import h5py

    try:
        with h5py.File(features_path, "r") as h5:
            return stored_names(h5)
    except OSError as exc:
        raise InputFileError(f"{features_path}: not a readable HDF5 file ({exc})") from None


def _index_rows_from_h5(features_path: Path, names: list[str]) -> list[dict]:
    import h5py

    rows: list[dict] = []
    if not names:  # nothing lost (and perhaps no features file yet: every row failed)
        return rows
    with h5py.File(features_path, "r") as h5:
        for name in names:
            attrs = h5[res_key(name)].attrs
            source, sequence = str(attrs.get("source", "")), str(attrs.get("sequence", ""))
            rows.append(
                {
                    "name": name,
                    "modify_seq": sequence,
                    "source": source,
                    "label": "",
                    "kind": str(attrs.get("kind", "")),
                    "length": len(sequence),
                    "group": group_of_source(source).name if source else "",
                }
            )
    return rows


def _updated_index(
    index_path: Path, features_path: Path, names: list[str], new: list[dict], labels: dict[str, str]
) -> pd.DataFrame | None:
    """The index of ``names`` (all stored proteins), or None if the current one is right."""
    current = read_index(index_path) if index_path.exists() else pd.DataFrame(columns=["name"])
    current = current[current["name"].isin(names)]
    known = set(current["name"])
    rows = [r for r in new if r["name"] not in known]
    known |= {r["name"] for r in rows}
    lost = [n for n in names if n not in known]  # e.g. killed between the two renames
    rows += _index_rows_from_h5(features_path, lost)
    for row in rows:
        row["label"] = row["label"] or labels.get(row["name"], "")
    if not rows and len(current) == len(names):
        return None
    if not rows:
        index = current
    elif current.empty:
        index = pd.DataFrame(rows)
    else:
        index = pd.concat([current, pd.DataFrame(rows)], ignore_index=True)
    order = {n: i for i, n in enumerate(names)}
    return index.sort_values("name", key=lambda s: s.map(order)).reset_index(drop=True)


def build_dataset(
    manifest: str | os.PathLike, out_dir: str | os.PathLike, config: BuildConfig | None = None
) -> BuildReport:
    """Build (or resume building) a dataset folder from a manifest CSV.

    Bad rows are reported in :attr:`BuildReport.failed` with a one-line reason; the other rows
    are built and merged. File-level problems (unreadable manifest, duplicate names) raise
    :class:`~seqdance.errors.SeqDanceError`.
    """
    config = config or BuildConfig()
    config.check()
    rows = read_manifest(manifest)
    out_dir = Path(out_dir)
    (out_dir / STAGING_DIR).mkdir(parents=True, exist_ok=True)
    with _exclusive(out_dir):
        return _build(rows, out_dir, config)


@contextlib.contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir`` (released by the kernel even after ``kill -9``)."""
    import fcntl

    with open(out_dir / LOCK_FILE, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SeqDanceError(f"another build is writing {out_dir}") from None
        yield


def _build(rows: list[ManifestRow], out_dir: Path, config: BuildConfig) -> BuildReport:
    _remove_stale_temporaries(out_dir)
    features_path, index_path = out_dir / FEATURES_FILE, out_dir / INDEX_FILE
    report = BuildReport(features_path, index_path)

    stored = set(_stored(features_path))
    todo = []
    for row in rows:
        problem = row.problem()
        if problem:
            report.failed[row.name] = problem
        elif row.name in stored or staging_path(out_dir, row.name).exists():
            report.skipped.append(row.name)
        else:
            todo.append(row)

    if todo:
        runner = _run_dask if config.scheduler else _run_local
        for result in runner(todo, out_dir, config):
            if result.ok:
                report.built.append(result.item.name)
                if result.value[1]:
                    report.warnings[result.item.name] = result.value[1]
            else:
                report.failed[result.item.name] = result.error

    # merge every staged protein of this manifest that is not stored yet, one at a time
    pending = [
        staging_path(out_dir, row.name)
        for row in rows
        if row.name not in stored and staging_path(out_dir, row.name).exists()
    ]
    new_rows: list[dict] = []
    damaged: list[Path] = []

    def staged_records():
        for path in pending:
            try:
                record = read_staged(path)
            except InputFileError as exc:
                damaged.append(path)
                report.failed[path.stem] = f"{exc}; removed, re-run the build"
                continue
            new_rows.append(record.index_row())
            yield record

    if pending:
        merge_into(features_path, staged_records())
        report.merged = [r["name"] for r in new_rows]
    for path in damaged:
        path.unlink(missing_ok=True)

    names = _stored(features_path)
    labels = {row.name: row.label for row in rows}
    index = _updated_index(index_path, features_path, names, new_rows, labels)
    if index is not None:
        write_index(index_path, index)

    if not config.keep_staging:
        stored_now = set(names)
        for row in rows:
            if row.name in stored_now:
                staging_path(out_dir, row.name).unlink(missing_ok=True)
    return report
