"""Outputs written whole or not at all, with the permissions the user's umask gives."""

from __future__ import annotations

import os

import numpy as np
import pytest

from quantizer.files import save_array, save_arrays, write_atomic

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
