"""Files a user gives and files mxugen writes: arrays read whole or refused in one line
(:func:`load_array`, :func:`load_arrays`), outputs never half-written, even on an interrupted
run."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    _regular(path, what)
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
    _regular(path, what)
    try:
        value = np.load(path, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise QuantizerError(f"cannot read {what} {path} as .npy: {_reason(exc)}") from None
    if not isinstance(value, np.ndarray):
        value.close()
        raise QuantizerError(f"cannot read {what} {path} as .npy: it is an .npz archive; give "
                             "one array (numpy.save)")
    return numbers(value, f"{what} {path}")


def _regular(path: Path | str, what: str) -> None:
    """A file to read ``what`` from that is not a regular file (a FIFO would block the read,
    a folder cannot be read) is one :class:`QuantizerError`."""
    if os.path.exists(path) and not os.path.isfile(path):
        raise QuantizerError(f"cannot read {what} {path}: it is not a regular file (a folder, "
                             "FIFO or device); give a .npy/.npz file")


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


def writable_file(path: Path | str) -> Path:
    """Where writing ``path`` puts the file: ``path``, or the file a symbolic link names.
    Anything but a regular file there (a folder, a device, a FIFO) is one
    :class:`QuantizerError`: renaming a file over it would replace it."""
    if not str(path):
        raise QuantizerError("an output path is empty; give a file name")
    path = Path(path)
    if path.is_symlink():
        try:
            os.stat(path)  # follows the links
        except FileNotFoundError:
            raise QuantizerError(f"{path} is a symbolic link to {os.readlink(path)}, which does "
                                 "not exist; give the name of a file to write") from None
        except OSError:  # a loop of links
            raise QuantizerError(f"{path} is a symbolic link that leads nowhere (a loop); give "
                                 "the name of a file to write") from None
        path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        what = "a folder" if path.is_dir() else "not a regular file (a device or FIFO?)"
        raise QuantizerError(f"{path} is {what}; give the name of a file to write")
    return path


def check_writable(path: Path | str) -> Path:
    """:func:`writable_file`, once a file can be made in its folder (made for the check and
    removed again): a run whose output cannot be written is refused before its work."""
    path = writable_file(path)
    created = None
    try:
        created = _make_folder(path.parent)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=".mxugen-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise QuantizerError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
    return path


def _make_folder(folder: Path) -> Path | None:
    """Create ``folder`` and any missing parents; the topmost folder created, or ``None``."""
    missing = None
    for parent in (folder, *folder.parents):
        if parent.exists():
            break
        missing = parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def replace_via_temporary(path: Path | str, suffix: str, write: Callable[[str], object]) -> None:
    """Call ``write`` with a temporary name in ``path``'s folder, then rename it to ``path``:
    the file is whole or absent, and folders made for it go again if it cannot be written
    (:class:`QuantizerError` naming ``path``). It gets the mode a plain ``open`` would (0666
    less the umask), not the 0600 of a temporary file."""
    path = writable_file(path)
    tmp, created = None, None
    try:
        created = _make_folder(path.parent)
        # A short prefix: the temporary name must fit wherever the final name fits.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:32]}.", suffix=suffix)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        if isinstance(exc, OSError):
            raise QuantizerError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


@contextmanager
def output_folder(folder: Path | str) -> Iterator[Path]:
    """Write a folder's files whole or not at all: the block writes into a temporary folder
    beside ``folder``; when it ends without an error, its files move into ``folder`` (made if
    need be), replacing those of the same name, and otherwise ``folder`` is left as it was
    (:class:`QuantizerError` naming it for a folder that cannot be written)."""
    if not str(folder):
        raise QuantizerError("an output folder is empty; give a folder name")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise QuantizerError(f"{folder} exists and is not a folder; give a folder to write")
    created = None
    try:
        created = _make_folder(folder.parent)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name[:32]}."))
    except OSError as exc:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise QuantizerError(f"cannot write {folder}: {exc.strerror or exc}") from None
    try:
        yield staging
        _move_into(staging, folder)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        if isinstance(exc, OSError):
            raise QuantizerError(f"cannot write {folder}: {exc.strerror or exc}") from None
        if isinstance(exc, QuantizerError):  # name the folder, not the staging one
            raise QuantizerError(str(exc).replace(str(staging), str(folder))) from None
        raise


def _move_into(staging: Path, folder: Path) -> None:
    """Move what ``staging`` holds into ``folder`` (whole, by renaming it, if ``folder`` is
    new) and remove ``staging``; every file it would replace is checked first."""
    if not folder.exists():
        os.chmod(staging, 0o777 & ~_umask())
        os.replace(staging, folder)
        return
    _check_targets(staging, folder)
    for entry in staging.iterdir():
        target = folder / entry.name
        if entry.is_dir() and target.is_dir():
            _move_into(entry, target)
        else:
            if entry.is_dir():
                os.chmod(entry, 0o777 & ~_umask())
            os.replace(entry, writable_file(target) if entry.is_file() else target)
    staging.rmdir()


def _check_targets(staging: Path, folder: Path) -> None:
    for entry in staging.iterdir():
        target = folder / entry.name
        if entry.is_dir() and target.is_dir():
            _check_targets(entry, target)
        elif entry.is_file():
            writable_file(target)
        elif target.exists():
            raise QuantizerError(f"{target} is in the way of a folder mxugen writes; move it")


def save_arrays(path: Path | str, **arrays) -> None:
    """``numpy.savez`` to ``path``, atomically (the temporary name keeps numpy's suffix)."""
    replace_via_temporary(path, ".npz", lambda tmp: np.savez(tmp, **arrays))


def save_array(path: Path | str, array) -> None:
    """``numpy.save`` to ``path``, atomically."""
    replace_via_temporary(path, ".npy", lambda tmp: np.save(tmp, array))
