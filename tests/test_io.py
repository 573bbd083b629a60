"""Atomic writes: the output appears whole, with normal permissions, or not at all."""

import os

import numpy as np
import pytest

from seqdance.errors import SeqDanceError
from seqdance.utils.io import atomic_path, output_group, save_npz


def test_atomic_path_renames_on_success_with_umask_permissions(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    old = os.umask(0o022)
    try:
        with atomic_path(target) as tmp:
            assert tmp.parent == target.parent and tmp != target
            tmp.write_text("done")
            assert not target.exists()
    finally:
        os.umask(old)
    assert target.read_text() == "done"
    assert target.stat().st_mode & 0o777 == 0o644
    assert list(target.parent.iterdir()) == [target]


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.npz"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_save_npz_roundtrip(tmp_path):
    save_npz(tmp_path / "a.npz", x=np.arange(3), s=np.array("AC"))
    with np.load(tmp_path / "a.npz") as data:
        assert data["x"].tolist() == [0, 1, 2] and str(data["s"]) == "AC"


@pytest.mark.parametrize("writer", ["atomic_path", "output_group"])
def test_unwritable_targets_name_the_users_path_not_a_temporary(tmp_path, writer):
    """A folder where the file should go, or a file where its folder should be: one error
    that names the path the user gave; no temporary name, nothing left behind."""
    folder = tmp_path / "out.csv"
    folder.mkdir()
    blocker = tmp_path / "plain"
    blocker.write_text("a file, not a folder")

    def write(target):
        if writer == "atomic_path":
            with atomic_path(target) as tmp:
                tmp.write_text("x")
        else:
            with output_group() as group:
                group.path(target).write_text("x")

    with pytest.raises(SeqDanceError) as info:
        write(folder)
    assert str(info.value) == f"{folder}: is a folder; give a file name to write"
    with pytest.raises(SeqDanceError) as info:
        write(blocker / "sub" / "out.csv")
    message = str(info.value)
    assert message.startswith(f"{blocker / 'sub' / 'out.csv'}: cannot write there (")
    assert ".tmp" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "plain"]
    assert list(folder.iterdir()) == []
