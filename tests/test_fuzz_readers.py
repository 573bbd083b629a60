"""Property-based tests (Hypothesis) of every reader a user feeds: any input either parses or
raises our one-line :class:`~seqdance.errors.SeqDanceError`; never another exception, never a
message over several lines. Inputs are drawn from the readers' own vocabulary (their headers,
amino acids, separators, numbers, text and damage) so that most examples reach deep checks.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from seqdance.benchmark.assays import read_proteingym_assay  # noqa: E402
from seqdance.benchmark.megascale import TSUBOYAMA_COLUMNS, read_tsuboyama  # noqa: E402
from seqdance.benchmark.metrics import read_per_assay_table  # noqa: E402
from seqdance.data.manifest import read_manifest  # noqa: E402
from seqdance.errors import SeqDanceError  # noqa: E402
from seqdance.inference.fasta import read_fasta  # noqa: E402
from seqdance.inference.mutations import build_mutant_set, parse_mutant  # noqa: E402
from seqdance.inference.scan import parse_positions  # noqa: E402
from seqdance.train.config import load_config  # noqa: E402

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run: a failure is reproducible
)
AMINO = "ACDEFGHIKLMNPQRSTVWY"
ODD_TEXT = st.sampled_from(["", " ", "nan", "inf", "-inf", "1e999", "-", "x", "é", "\ufeff",
                            '"', "'", ";", "0", "-1", "7.5", "1,2", "\t", "NA"])  # fmt: skip
NUMBER = st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr)
CELL = st.one_of(ODD_TEXT, NUMBER, st.text(alphabet=AMINO + "BXZUO*:0123456789", max_size=8))


def outcome(fn, *args):
    """Call a reader: its value, or the message of our error (one line). Anything else fails."""
    try:
        return fn(*args)
    except SeqDanceError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message, message
        return None


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(",".join(r) for r in [header, *rows]) + "\n"


def rows_of(columns: int, cell=CELL):
    return st.lists(st.lists(cell, min_size=columns, max_size=columns), max_size=6)


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return path


@FUZZ
@given(header=st.lists(st.sampled_from(["assay", "property", "spearman", "auc", "mcc", "n",
                                        "DMS ID", "ESM2", "Taxon"]), min_size=1, max_size=5),
       data=st.data())  # fmt: skip
def test_per_assay_tables(tmp_path_factory, header, data):
    rows = data.draw(rows_of(len(header)))
    path = write(tmp_path_factory.mktemp("t"), "DMS_Spearman_level.csv", csv_text(header, rows))
    tables = outcome(read_per_assay_table, path)
    for table in (tables or {}).values():  # what is read is finite and in range
        for value in table.to_numpy().ravel():
            assert math.isnan(value) or -1 <= value <= 1


@FUZZ
@given(rows=rows_of(4))
def test_tsuboyama_tables(tmp_path_factory, rows):
    header = list(TSUBOYAMA_COLUMNS)
    full = []
    for mut_type, seq, ddg, name in rows:
        row = dict.fromkeys(header, "1")
        row.update(mut_type=mut_type or "wt", aa_seq=seq, ddG_ML=ddg, WT_name=name)
        full.append([row[c] for c in header])
    path = write(tmp_path_factory.mktemp("t"), "ts.csv", csv_text(header, full))
    assays = outcome(read_tsuboyama, path)
    for assay in assays or []:
        assert all(math.isfinite(v) for v in assay.target)


@FUZZ
@given(rows=rows_of(3), wild=st.text(alphabet=AMINO + "XB", min_size=1, max_size=12))
def test_proteingym_assays(tmp_path_factory, rows, wild):
    folder = tmp_path_factory.mktemp("t")
    write(folder, "a.fasta", f">wt\n{wild}\n")
    path = write(folder, "a.csv", csv_text(["mutant", "DMS_score", "DMS_score_bin"], rows))
    outcome(read_proteingym_assay, path)


@FUZZ
@given(body=st.one_of(
    st.lists(st.one_of(st.text(alphabet=AMINO + "BXZUO*-.> \t\r", max_size=30),
                       st.sampled_from([">", ">a", ">a b", ">a", ";c", "", "\ufeff>x"])),
             max_size=8).map("\n".join),
    st.binary(max_size=40),
))  # fmt: skip
def test_fasta_files(tmp_path_factory, body):
    path = write(tmp_path_factory.mktemp("t"), "a.fasta", body)
    records = outcome(read_fasta, path)
    for record in records or []:
        assert record.sequence and set(record.sequence) <= set(AMINO + "BXZUO")


MANIFEST_COLUMNS = ["name", "source", "kind", "topology", "trajectory", "structure", "label",
                    "path", "temperatures", "replicas", "skip"]  # fmt: skip
MANIFEST_CELL = st.one_of(
    CELL,
    st.sampled_from(["ATLAS", "mdCATH", "md", "nma", "train", "test", "proteinflow_pdb",
                     str(Path(__file__).parent / "data" / "nma" / "2g3r.pdb"), "a;b", "320;348"]),
)  # fmt: skip


@FUZZ
@given(header=st.lists(st.sampled_from(MANIFEST_COLUMNS), min_size=1, max_size=8, unique=True),
       data=st.data())  # fmt: skip
def test_manifests(tmp_path_factory, header, data):
    rows = data.draw(rows_of(len(header), MANIFEST_CELL))
    path = write(tmp_path_factory.mktemp("t"), "m.csv", csv_text(header, rows))
    for row in outcome(read_manifest, path) or []:
        problem = row.problem()  # a row's problem is one line too
        assert problem is None or "\n" not in problem


@FUZZ
@given(text=st.text(alphabet=AMINO + "BXZ*:_ 0123456789-", max_size=16),
       wild=st.text(alphabet=AMINO, min_size=1, max_size=20),
       offset=st.integers(-3, 3))  # fmt: skip
def test_mutants(text, wild, offset):
    outcome(parse_mutant, text)
    built = outcome(build_mutant_set, wild, [text], None, offset)
    if built is not None:
        assert all(len(s) == len(wild) for s in built.sequences)


@FUZZ
@given(text=st.text(alphabet="0123456789,-: x", max_size=12), length=st.integers(1, 30))
def test_scan_positions(text, length):
    positions = outcome(parse_positions, text, length)
    for p in positions or []:
        assert 0 <= p < length


YAML_KEYS = ["seed", "train", "model", "data", "out_dir", "phases", "lr", "crop_size", "batch_size",
             "progress", "log_every"]  # fmt: skip
YAML_VALUE = st.one_of(CELL, st.sampled_from(["[]", "{}", "true", "null", "-1", "1.5", "[1, 2]"]))


@FUZZ
@given(lines=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(YAML_KEYS), YAML_VALUE),
                      max_size=6),
       overrides=st.lists(st.tuples(st.sampled_from(["seed", "train.lr", "model.arch",
                                                     "train.phases.0.crop_size", "nope"]),
                                    YAML_VALUE), max_size=2))  # fmt: skip
def test_training_configs(tmp_path_factory, lines, overrides):
    text = "".join(f"{'  ' * depth}{key}: {value}\n" for depth, key, value in lines)
    path = write(tmp_path_factory.mktemp("t"), "c.yaml", text)
    outcome(load_config, path, [f"{k}={v}" for k, v in overrides])
