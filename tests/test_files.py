"""Outputs written whole or not at all, with the permissions the user's umask gives."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from quantizer.errors import QuantizerError
from quantizer.files import (check_writable, output_folder, replace_via_temporary, save_array,
                             save_arrays, write_atomic)

WRITERS = {
    "text": lambda path: write_atomic(path, "hello\n"),
    "npy": lambda path: save_array(path, np.arange(3)),
    "npz": lambda path: save_arrays(path, x=np.arange(3)),
}


@pytest.fixture
def umask():
    """Set a umask for the test; restore the one before after it."""
    before = os.umask(0o022)
    os.umask(before)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(before)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
@pytest.mark.parametrize("kind", WRITERS)
def test_outputs_get_the_mode_the_umask_gives(kind, mask, umask, tmp_path):
    umask(mask)
    path = tmp_path / f"out.{kind}"
    WRITERS[kind](path)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_an_interrupted_write_leaves_nothing(tmp_path):
    path = tmp_path / "out.v"
    with pytest.raises(TypeError):
        write_atomic(path, b"not text")  # fails after the temporary file exists
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_takes_away_the_folders_made_for_it(tmp_path):
    with pytest.raises(TypeError):
        write_atomic(tmp_path / "new" / "deeper" / "out.v", b"not text")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make", ["fifo", "folder"])
def test_a_target_that_is_not_a_regular_file_is_refused_and_left_alone(tmp_path, make):
    """Renaming a file over a device or FIFO would replace it (as root, /dev/full once)."""
    path = tmp_path / "target"
    os.mkfifo(path) if make == "fifo" else path.mkdir()
    with pytest.raises(QuantizerError, match=f"{path} is (not a regular file \\(a device or "
                                             r"FIFO\?\)|a folder); give the name of a file "):
        save_array(path, np.arange(3))
    assert path.is_fifo() if make == "fifo" else path.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["target"]


def test_a_symbolic_link_is_written_through(tmp_path):
    (tmp_path / "real.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    write_atomic(tmp_path / "link.txt", "new")
    assert (tmp_path / "link.txt").is_symlink() and (tmp_path / "real.txt").read_text() == "new"


def test_an_unwritable_place_is_found_before_the_work(tmp_path):
    with pytest.raises(QuantizerError, match="cannot write /proc/mxugen/y.npy: "):
        check_writable("/proc/mxugen/y.npy")
    assert check_writable(tmp_path / "a" / "y.npy") == tmp_path / "a" / "y.npy"
    assert list(tmp_path.iterdir()) == []  # the folder made to try it went again
    with pytest.raises(QuantizerError, match="an output path is empty"):
        check_writable("")


def _no_space(tmp):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("existing", [False, True])
def test_a_folder_is_written_whole_or_left_as_it_was(tmp_path, umask, existing):
    umask(0o022)
    folder = tmp_path / "out" / "images"
    if existing:
        folder.mkdir(parents=True)
        (folder / "a.txt").write_text("old a")
        (folder / "keep.txt").write_text("the user's")
    # A disk that fills after the first file: nothing of the new folder reaches `folder`.
    with pytest.raises(QuantizerError, match="cannot write .*b.npy: No space left on device"):
        with output_folder(folder) as staging:
            write_atomic(staging / "a.txt", "new a")
            replace_via_temporary(staging / "b.npy", ".npy", _no_space)
    if existing:
        assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "keep.txt"]
        assert (folder / "a.txt").read_text() == "old a"
        assert [p.name for p in (tmp_path / "out").iterdir()] == ["images"]
    else:
        assert list(tmp_path.iterdir()) == []
    with output_folder(folder) as staging:
        write_atomic(staging / "a.txt", "new a")
        (staging / "sub").mkdir()
        write_atomic(staging / "sub" / "c.txt", "c")
    assert (folder / "a.txt").read_text() == "new a" and (folder / "sub" / "c.txt").exists()
    assert folder.stat().st_mode & 0o777 == 0o755
    assert (folder / "keep.txt").exists() == existing
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["images"]  # no staging left


def test_a_folder_whose_file_would_replace_a_fifo_moves_nothing(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    os.mkfifo(folder / "b.txt")
    with pytest.raises(QuantizerError, match="b.txt is not a regular file"):
        with output_folder(folder) as staging:
            write_atomic(staging / "a.txt", "a")
            write_atomic(staging / "b.txt", "b")
    assert [p.name for p in folder.iterdir()] == ["b.txt"] and (folder / "b.txt").is_fifo()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
