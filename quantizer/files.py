"""Files a user gives and files mxugen writes: arrays read whole or refused in one line
(:func:`load_array`, :func:`load_arrays`), outputs never half-written, even on an interrupted
run."""

from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import QuantizerError

#: What numpy raises on a file that is missing, unreadable, truncated or not its format.
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def load_arrays(path: Path | str, what: str = "arrays") -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive at ``path``, read now (numpy reads an archive's
    members lazily, so a damaged member would otherwise fail later, wherever it is first
    used). Any file that is not a readable ``.npz`` is one :class:`QuantizerError` naming
    ``what`` it was meant to be; :func:`numbers` checks the arrays that must hold numbers."""
    try:
        archive = np.load(path, allow_pickle=False)
        if isinstance(archive, np.ndarray):
            problem = "it holds one array (.npy), not an .npz archive of named arrays " \
                "(numpy.savez)"
        else:
            with archive:
                arrays = {name: archive[name] for name in archive.files}
            # numpy hands back the raw bytes of a member that is not an array
            odd = [name for name, value in arrays.items() if not isinstance(value, np.ndarray)]
            if not odd:
                return arrays
            problem = f"{odd[0]!r} is not a numpy array"
    except _READ_ERRORS as exc:
        problem = _reason(exc)
    raise QuantizerError(f"cannot read {what} {path} as .npz: {problem}")


def load_array(path: Path | str, what: str = "array") -> np.ndarray:
    """The one numeric array of the ``.npy`` file at ``path``; anything else is one
    :class:`QuantizerError` naming ``what`` it was meant to be."""
    try:
        value = np.load(path, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise QuantizerError(f"cannot read {what} {path} as .npy: {_reason(exc)}") from None
    if not isinstance(value, np.ndarray):
        value.close()
        raise QuantizerError(f"cannot read {what} {path} as .npy: it is an .npz archive; give "
                             "one array (numpy.save)")
    return numbers(value, f"{what} {path}")


def numbers(array: np.ndarray, where: str) -> np.ndarray:
    """``array`` if it holds numbers (booleans, integers, floats); text, dates or records are
    one :class:`QuantizerError` saying ``where`` they were found."""
    if array.dtype.kind not in "biuf":
        raise QuantizerError(f"{where} holds {array.dtype} values, not numbers")
    return array


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, (zipfile.BadZipFile, zlib.error, EOFError)):
        return f"the file is damaged or truncated ({exc})"
    if "pickled" in str(exc):  # numpy's guess for a file that is neither .npy nor .npz
        return "not a numpy file (numpy.save / numpy.savez)"
    return str(exc)


def _umask() -> int:
    # The umask can only be read by setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename."""
    replace_via_temporary(path, ".tmp", lambda tmp: Path(tmp).write_text(text))


def replace_via_temporary(path: Path | str, suffix: str, write: Callable[[str], object]) -> None:
    """Call ``write`` with a temporary name in ``path``'s folder, then rename it to ``path``:
    the file is whole or absent. It gets the mode a plain ``open`` would (0666 less the
    umask), not the 0600 of a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A short prefix: the temporary name must fit wherever the final name fits.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:32]}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_arrays(path: Path | str, **arrays) -> None:
    """``numpy.savez`` to ``path``, atomically (the temporary name keeps numpy's suffix)."""
    replace_via_temporary(path, ".npz", lambda tmp: np.savez(tmp, **arrays))


def save_array(path: Path | str, array) -> None:
    """``numpy.save`` to ``path``, atomically."""
    replace_via_temporary(path, ".npy", lambda tmp: np.save(tmp, array))
