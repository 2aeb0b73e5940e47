"""Writing output files safely: never a half-written file, even on an interrupted run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def write_atomic(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename."""
    _replace_via_temporary(Path(path), ".tmp", lambda tmp: Path(tmp).write_text(text))


def _replace_via_temporary(path: Path, suffix: str, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A short prefix: the temporary name must fit wherever the final name fits.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:32]}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_arrays(path: Path | str, **arrays) -> None:
    """``numpy.savez`` to ``path``, atomically (the temporary name keeps numpy's suffix)."""
    _replace_via_temporary(Path(path), ".npz", lambda tmp: np.savez(tmp, **arrays))


def save_array(path: Path | str, array) -> None:
    """``numpy.save`` to ``path``, atomically."""
    _replace_via_temporary(Path(path), ".npy", lambda tmp: np.save(tmp, array))
