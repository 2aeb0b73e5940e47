"""Images on disk (quantizer/manifest.py): what ``mxugen compile`` wrote is read back as it was
written, and a manifest or image edited by hand is refused, never baked into Verilog."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mxugen.cli import main
from quantizer.errors import QuantizerError
from quantizer.importers.tflite import load_tflite
from quantizer.manifest import images_hardware, read_images, write_images
from quantizer.sizing import accelerator_config

MODELS = Path(__file__).parent / "models"
GRAPH = load_tflite(MODELS / "fc.tflite")
CONFIG = accelerator_config(GRAPH, 2, rows=4, cols=4)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images") / "img"
    write_images(GRAPH, CONFIG, 2, folder)
    return folder


def _edit_manifest(doc: dict) -> None:
    doc["hardware"]["rows"] = 8


def _edit_version(doc: dict) -> None:
    doc["version"] = 1


def _edit_files(doc: dict) -> None:
    doc["files"]["weights"] = ["../../etc/hostname"]


EDITS = {
    "hardware rows": (lambda folder: _rewrite(folder, _edit_manifest), "changed after mxugen"),
    "old version": (lambda folder: _rewrite(folder, _edit_version), "manifest version 1"),
    "files outside": (lambda folder: _rewrite(folder, _edit_files), "lists no image files"),
    "no digest": (lambda folder: _rewrite(folder, lambda doc: doc.pop("digest")),
                  "changed after mxugen"),
    "null manifest": (lambda folder: (folder / "manifest.json").write_text("null"),
                      "is not an mxugen images manifest"),
    "not JSON": (lambda folder: (folder / "manifest.json").write_bytes(b"\xff\xfe\x00"),
                 "has no readable manifest.json"),
    "weights cut": (lambda folder: _cut(folder / "weights.hex"), "changed after mxugen"),
    "one word wider": (lambda folder: _widen(folder / "params.hex"), "changed after mxugen"),
    "program gone": (lambda folder: (folder / "program.hex").unlink(),
                     "cannot read the images in .*No such file"),
}


def _rewrite(folder: Path, edit) -> None:
    doc = json.loads((folder / "manifest.json").read_text())
    edit(doc)
    (folder / "manifest.json").write_text(json.dumps(doc))


def _cut(path: Path) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:len(lines) // 2]) + "\n")


def _widen(path: Path) -> None:
    lines = path.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line and not line.startswith("//"))
    lines[first] = "00" + lines[first]
    path.write_text("\n".join(lines) + "\n")


def test_images_read_back_as_written(images):
    assert images_hardware(images) == CONFIG.to_dict()
    words = read_images(images, CONFIG.to_dict())
    assert set(words) == {"weights", "params", "program"} and all(words.values())


@pytest.mark.parametrize("edit", EDITS)
def test_an_edited_image_folder_is_refused(images, tmp_path, edit):
    folder = tmp_path / "img"
    shutil.copytree(images, folder)
    make, message = EDITS[edit]
    make(folder)
    with pytest.raises(QuantizerError, match=message):
        images_hardware(folder)
    with pytest.raises(QuantizerError, match=message):
        read_images(folder, CONFIG.to_dict())


def test_generate_refuses_edited_images_in_one_line_and_writes_nothing(images, tmp_path,
                                                                     capsys):
    folder = tmp_path / "img"
    shutil.copytree(images, folder)
    _rewrite(folder, _edit_manifest)
    assert main(["generate", "--accelerator", "--images", str(folder),
                 "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "were changed after mxugen wrote them" in err
    assert not (tmp_path / "out").exists()
