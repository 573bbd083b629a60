"""The streaming FASTA index against ``read_fasta`` (the whole text parsed at once): the same
records, the same one-line errors, random access, and memory far below the file size."""

from __future__ import annotations

import hashlib
import tracemalloc

import numpy as np
import pytest

from helpers import proteins_fasta
from seqdance.errors import SeqDanceError
from seqdance.inference.fasta import read_fasta
from seqdance.inference.fasta_index import index_fasta, records_digest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _outcome(reader, path):
    """The records (id, sequence) a reader returns, or its error message."""
    try:
        return [(r.id, r.sequence) for r in reader(path)]
    except (SeqDanceError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _same(tmp_path, data: bytes, name: str = "in.fasta"):
    path = tmp_path / name
    path.write_bytes(data)
    want = _outcome(read_fasta, path)
    got = _outcome(index_fasta, path)
    assert got == want, data
    return want


TRICKY = {
    "plain": b">a desc\nACDE\nFGH\n>b\nKLM\n",
    "crlf": b">a\r\nACDE\r\nFGH\r\n>b\r\nKLM\r\n",
    "cr only": b">a\rACDE\r>b\rKLM",
    "bom": b"\xef\xbb\xbf>a\nACDE\n",
    "stop and lowercase": b">a\nacde*\n>b\nKL M*\n",
    "blank lines and comments": b"\n;comment\n>a\n\n  AC  \n;x\nDE\n\n>b x y\nK\n",
    "no final newline": b">a\nAC\n>b\nDE",
    "exotic breaks": ">a\x0cAC\x1cDE\u2028>b\x85KL\n".encode(),
    "non-ascii header": ">é ü\nAC\n>b\nDE\n".encode(),
    "sharp s": ">a\nAß\n".encode(),  # str.upper gives SS
    "line before header": b"AC\n>a\nDE\n",
    "empty header": b">a\nAC\n>  \nDE\n",
    "bad id": b">a/b\nAC\n",
    "bad letter": b">a\nAC1\n>b\nZZ\n",
    "empty sequence": b">a\n>b\nAC\n",
    "no records": b"\n;only a comment\n",
    "empty file": b"",
    "duplicate": b">a\nAC\n>b\nDE\n>a\nKL\n",
    "duplicate then bad": b">a\nAC\n>a\nDE\n>c\nK1\n",
    "undecodable": b">a\nAC\n>b\nD\xffE\n",
    "bad record then undecodable": b">a\nA1\n>b\nD\xffE\n",
    "undecodable after bom": b"\xef\xbb\xbf>a\nA\xe2\x82\n",
    "gzip": b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
}


@pytest.mark.parametrize("name", list(TRICKY))
def test_tricky_texts_give_what_read_fasta_gives(tmp_path, name):
    result = _same(tmp_path, TRICKY[name])
    if name == "stop and lowercase":
        assert result == [("a", "ACDE"), ("b", "KLM")]
    if name == "undecodable after bom":  # the offset counts the byte-order mark
        assert "byte 0xe2 at offset 7" in result
    if name in ("undecodable", "bad record then undecodable"):
        assert "byte 0xff at offset 10" in result


def test_a_folder_and_a_missing_file_are_the_same_errors(tmp_path):
    assert _outcome(index_fasta, tmp_path) == _outcome(read_fasta, tmp_path)
    missing = tmp_path / "missing.fasta"
    assert _outcome(index_fasta, missing) == _outcome(read_fasta, missing)


_PIECES = [*"ACDEKLWYacdk* >;\t1éß", "\r", "\n", "\r\n", "\x0c", "\u2028"]
_LINE = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)


_FIXTURE = [HealthCheck.function_scoped_fixture]  # tmp_path: each example rewrites one file


@settings(max_examples=300, deadline=None, suppress_health_check=_FIXTURE)
@given(st.lists(_LINE, max_size=12), st.booleans(), st.sampled_from(["\n", "\r\n"]))
def test_any_text_gives_what_read_fasta_gives(tmp_path, lines, bom, ending):
    data = ending.join(lines).encode()
    _same(tmp_path, (b"\xef\xbb\xbf" if bom else b"") + data)


def test_random_access_and_digest(tmp_path):
    path = tmp_path / "many.fasta"
    path.write_text(proteins_fasta(300, seed=3).replace("\n>", "\n\n;note\n>"))
    records = read_fasta(path)
    index = index_fasta(path)
    assert len(index) == 300 and index.ids == tuple(r.id for r in records)
    assert index.lengths.tolist() == [len(r.sequence) for r in records]
    rng = np.random.default_rng(0)
    for i in rng.permutation(300)[:60].tolist():
        assert index[i] == records[i]
    assert index[-1] == records[-1] and index[10:13] == records[10:13]
    assert list(index) == records
    with pytest.raises(IndexError):
        index[300]
    # the resume key of sharded runs: the same value as the whole-text hash
    text = "\n".join(f"{r.id}\t{r.sequence}" for r in records)
    assert index.digest == hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    assert records_digest(records) == index.digest


def test_a_file_changed_after_indexing_is_an_error(tmp_path):
    path = tmp_path / "in.fasta"
    path.write_text(">a\nACDE\n>b\nKLMN\n")
    index = index_fasta(path)
    path.write_text(">a\nACDE\n>b\nKL\n")
    with pytest.raises(SeqDanceError, match="changed while being read"):
        index[1]


def _write_records(path, count: int, low: int, high: int) -> int:
    rng = np.random.default_rng(0)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    with open(path, "w") as handle:
        for k in range(count):  # 60-letter lines
            seq = "".join(rng.choice(letters, size=int(rng.integers(low, high + 1))))
            body = "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60))
            handle.write(f">r{k} protein {k}\n{body}\n")
    return path.stat().st_size


def _peak(reader, path) -> int:
    """Peak bytes allocated by ``reader(path)`` while it runs (tracemalloc, not wall clock)."""
    tracemalloc.start()
    try:
        result = reader(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result) == 2000
    return peak


def test_indexing_memory_grows_with_records_not_residues(tmp_path):
    _write_records(tmp_path / "warm.fasta", 5, 5, 9)
    index_fasta(tmp_path / "warm.fasta")  # imports and caches outside the measurement
    short, long = tmp_path / "short.fasta", tmp_path / "long.fasta"
    _write_records(short, 2000, 100, 140)  # about 0.3 MB
    size = _write_records(long, 2000, 1000, 1400)  # the same ids, 10x the residues: 2.5 MB
    index_short, index_long = _peak(index_fasta, short), _peak(index_fasta, long)
    whole_short, whole_long = _peak(read_fasta, short), _peak(read_fasta, long)
    # the index holds ids and offsets (and one record while checking it): not the residues
    assert index_long < 1.2 * index_short + 20_000, (index_short, index_long)
    assert index_long < size / 5, (index_long, size)
    # the whole-text reader grows with the residues: what the index avoids
    assert whole_long > 5 * whole_short and whole_long > size, (whole_short, whole_long)


# -- predict and embed read through the index: the same bytes as the whole-list writers --------
def test_predict_and_embed_a_shard_at_a_time_equal_the_whole_list_writers(
    run_cli, tiny_dir, tiny_model, tmp_path, monkeypatch
):
    from seqdance.inference.embed import embed, write_embeddings
    from seqdance.inference.store_predict import PredictOutputs, predict_records

    monkeypatch.setenv("SEQDANCE_SHARD_TOKENS", "100")  # many shards for 40 records
    fasta = tmp_path / "in.fasta"
    fasta.write_text(proteins_fasta(40, seed=5).replace("\n", "\r\n").lower())
    records = read_fasta(fasta)
    common = ["-m", str(tiny_dir), "--token-budget", "120", "--no-progress"]
    assert run_cli(["predict", str(fasta), *common, "-o", str(tmp_path / "cli")]) == 0
    predict_records(tiny_model, records, tmp_path / "api", PredictOutputs(token_budget=120))
    cli = sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert cli == sorted(p.name for p in (tmp_path / "api").iterdir()) and len(cli) == 81
    for name in cli:
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "api" / name).read_bytes()
    assert run_cli(["embed", str(fasta), *common, "-o", str(tmp_path / "cli.h5")]) == 0
    done = embed(tiny_model, [r.sequence for r in records], token_budget=120)
    write_embeddings(tmp_path / "api.h5", ((records[i].id, x) for i, x in done))
    assert (tmp_path / "cli.h5").read_bytes() == (tmp_path / "api.h5").read_bytes()
