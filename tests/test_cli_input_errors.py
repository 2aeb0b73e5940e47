"""Damaged or unsuitable user files are one line on stderr and exit 2, never a traceback, and
nothing is written: truncated and corrupted archives wherever a command reads one, an archive
where one array is expected (and the reverse), arrays of text, layers with no inputs or
outputs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from mxugen.cli import main

MODELS = Path(__file__).parent / "models"


@pytest.fixture
def files(tmp_path):
    """A float MLP, its calibration data, int8 inputs for fc.tflite, and damaged archives."""
    np.savez(tmp_path / "mlp.npz", weight_0=np.ones((3, 4)), bias_0=np.zeros(3),
             input_name=np.array("x"))
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).random((8, 4)))
    np.save(tmp_path / "x.npy", np.zeros((2, 20), np.int8))
    whole = (tmp_path / "calib.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(whole[:len(whole) // 2])
    # Flip a byte of the member's data: the archive opens, the member fails its CRC.
    (tmp_path / "corrupt.npz").write_bytes(whole[:80] + bytes([whole[80] ^ 0xFF]) + whole[81:])
    np.savez(tmp_path / "no_columns.npz", weight_0=np.zeros((3, 0)), bias_0=np.zeros(3))
    np.savez(tmp_path / "no_rows.npz", weight_0=np.zeros((0, 4)), bias_0=np.zeros(0))
    np.savez(tmp_path / "text.npz", weight_0=np.array([["a"] * 4] * 3), bias_0=np.zeros(3))
    np.save(tmp_path / "text.npy", np.array([["a"] * 20] * 2))
    np.save(tmp_path / "nan.npy", np.where(np.eye(2, 20) > 0, np.nan, 0.5).astype(np.float32))
    np.savez(tmp_path / "text_x.npz", x=np.array([["a"] * 4] * 8))
    return tmp_path


CASES = {
    "truncated model": (["quantize", "truncated.npz", "--input-range", "0,1"],
                        "cannot read float model .*truncated.npz as .npz: the file is damaged"),
    "truncated calibration": (["quantize", "mlp.npz", "--calib", "truncated.npz"],
                              "cannot read calibration data .*: the file is damaged"),
    "corrupt calibration": (["quantize", "mlp.npz", "--calib", "corrupt.npz"],
                            "cannot read calibration data .*: the file is damaged"),
    "truncated evaluation": (["quantize", "mlp.npz", "--calib", "calib.npz", "--eval",
                              "truncated.npz"], "cannot read evaluation data"),
    "calibration as .npy": (["quantize", "mlp.npz", "--calib", "x.npy"],
                            r"holds one array \(.npy\), not an .npz archive"),
    "CNN calibration truncated": (["quantize", str(MODELS / "digits_cnn.onnx"), "--calib",
                                   "truncated.npz"], "cannot read calibration data"),
    "layer without inputs": (["quantize", "no_columns.npz", "--input-range", "0,1"],
                             r"weight has shape \(3, 0\): a layer needs at least one input"),
    "layer without outputs": (["quantize", "no_rows.npz", "--input-range", "0,1"],
                              r"weight has shape \(0, 4\): a layer needs at least one input"),
    "model of text": (["quantize", "text.npz", "--input-range", "0,1"],
                      r"float model .*text.npz: 'weight_0' holds <U1 values, not numbers"),
    "calibration of text": (["quantize", "mlp.npz", "--calib", "text_x.npz"],
                            r"calibration data .*text_x.npz: 'x' holds <U1 values"),
    "sim inputs of text": (["sim", str(MODELS / "fc.tflite"), "--golden", "--float-input",
                            "--input", "text.npy", "--output", "OUT/y.npy"],
                           r"inputs .*text.npy holds <U1 values, not numbers"),
    "sim float inputs with NaN": (["sim", str(MODELS / "fc.tflite"), "--golden",
                                   "--float-input", "--input", "nan.npy", "--output",
                                   "OUT/y.npy"], r"include NaN or infinity; give finite"),
    "sim inputs truncated": (["sim", str(MODELS / "fc.tflite"), "--golden", "--input",
                              "truncated.npz", "--output", "OUT/y.npy"],
                             "cannot read inputs .*: the file is damaged"),
    "sim inputs as .npz": (["sim", str(MODELS / "fc.tflite"), "--golden", "--input",
                            "calib.npz", "--output", "OUT/y.npy"],
                           r"as .npy: it is an .npz archive; give one array"),
    "bench inputs as .npz": (["bench", "model", str(MODELS / "fc.tflite"), "--input",
                              "calib.npz"], r"as .npy: it is an .npz archive; give one array"),
}


@pytest.mark.parametrize("case", CASES)
def test_damaged_files_are_one_line_and_exit_2(files, capsys, case):
    words, message = CASES[case]
    words = [str(files / w) if (files / w).exists() else w.replace("OUT", str(files / "out"))
             for w in words]
    if words[0] == "quantize":
        words += ["-o", str(files / "out")]
    assert main(words) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mxugen: error: "), err
    assert re.search(message, err), err
    assert not (files / "out").exists()


@pytest.mark.parametrize("words, message", [
    (["quantize", "truncated.npz", "--input-range", "0,1", "-o", "out"],
     "cannot read float model .*truncated.npz as .npz: the file is damaged"),
    (["quantize", "mlp.npz", "--input-range", "0,1", "-o", "mlp.npz"],
     "output mlp.npz exists and is not a directory"),
    (["quantize", "mlp.npz", "--input-range", "0,1", "-o", "mlp.npz/out"],
     "would be inside .*mlp.npz, which is a file"),
    (["quantize", "no_columns.npz", "--input-range", "0,1", "-o", "out"],
     r"weight has shape \(3, 0\): a layer needs at least one input"),
], ids=["broken npz", "output is a file", "output below a file", "zero columns"])
@pytest.mark.parametrize("launcher", ["script", "module"])
def test_a_user_mistake_is_one_line_and_exit_2_from_a_process(files, words, message, launcher):
    """As a user meets it: a process, its exit code and everything on stderr (no traceback
    from anywhere, interpreter shutdown included); through the ``mxugen`` script that
    ``pip install`` made (it must import the package from wherever it was installed), and
    through ``python -m mxugen`` from this source tree."""
    import os
    import shutil
    import subprocess
    import sys
    if launcher == "script":
        script = shutil.which("mxugen")
        if script is None:
            pytest.skip("no mxugen script on PATH: install the package (README) first")
        argv, env = [script], dict(os.environ)
    else:
        root = Path(__file__).resolve().parent.parent
        argv = [sys.executable, "-m", "mxugen"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([*argv, *words], cwd=files, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("mxugen: error: "), \
        done.stderr
    assert re.search(message, done.stderr), done.stderr
    assert not (files / "out").exists()


@pytest.mark.parametrize("argv, message", [
    (["generate", "--rows", "x", "-o", "out"],
     r"^mxugen generate: error: argument --rows: invalid int value: 'x' "
     r"\(see mxugen generate --help\)$"),
    (["bogus"], r"^mxugen: error: argument COMMAND: invalid choice: 'bogus'"),
    (["bench"], r"^mxugen bench: error: the following arguments are required: KIND"),
    (["bench", "generate", "--arrays", "4x0"],
     r"'4x0' is not an array: write rows x cols, e.g. 64x64"),
    (["sim", "model.tflite", "--match", "onnx"], r"argument --match: invalid choice: 'onnx'"),
    (["quantize", "m.npz", "--input-range", "-1,1", "-o", "out"],
     r"expected one argument \(a value that starts with '-' goes as --option=VALUE, e\.g\. "
     r"--input-range=-1,1\)"),
    (["compile", "m.tflite", "-o", "out", "--bogus"],
     r"^mxugen compile: error: unrecognized arguments: --bogus \(see mxugen compile --help\)$"),
])
def test_argparse_errors_are_one_line_too(capsys, argv, message):
    """What argparse itself refuses is one line with where to look, not the usage block."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err.strip()), err


def _damaged_scale(files: Path, value: float) -> Path:
    """fc.tflite with its output tensor's scale (a float32 in the flatbuffer) set to
    ``value``."""
    import struct

    from quantizer.importers.tflite import load_tflite
    data = (MODELS / "fc.tflite").read_bytes()
    graph = load_tflite(MODELS / "fc.tflite")
    packed = struct.pack("<f", graph.output.scale[0])
    assert data.count(packed) == 1
    path = files / f"scale_{value}.tflite"
    path.write_bytes(data.replace(packed, struct.pack("<f", value)))
    return path


# Found by a sweep of 469 hostile inputs over every command (issue #14's held-out list is
# like it): each was a traceback, exit 1, an ignored option or a half-written folder.
MISTAKES = {
    "range too wide": (["quantize", "mlp.npz", "--input-range=-1e300,1e300", "-o", "OUT"],
                       "outside what an int8 scale can hold"),
    "range too narrow": (["quantize", "mlp.npz", "--input-range=0,1e-45", "-o", "OUT"],
                         "outside what an int8 scale can hold"),
    "calibration too wide": (["quantize", "mlp.npz", "--calib", "huge.npz", "-o", "OUT"],
                             "x: range spans 1e\\+300, outside the 1e-30"),
    "n-std of 0": (["quantize", "mlp.npz", "--input-range", "0,1", "--n-std", "0", "-o", "OUT"],
                   "--n-std sets data-free ranges"),
    "n-std with data": (["quantize", "mlp.npz", "--calib", "calib.npz", "--n-std", "3", "-o",
                         "OUT"], "--n-std sets data-free ranges .* with --calib"),
    "labels out of range": (["quantize", "mlp.npz", "--calib", "calib.npz", "--eval",
                             "bad_labels.npz", "-o", "OUT"],
                            r"'labels' must be one class index a sample, whole numbers 0 … 2"),
    "negative seed": (["bench", "gemm", "--seed", "-1"], "a seed is an integer from 0 to"),
    "seed past 2**32": (["demo", "--seed", "99999999999", "-o", "OUT"],
                        "a seed is an integer from 0 to 4294967295"),
    "rows past 256": (["demo", "--rows", "512", "-o", "OUT"], "rows must be an integer in"),
    "top with a path": (["generate", "--top", "../evil", "-o", "OUT"],
                        "'../evil' is not a Verilog module name"),
    "a mode twice": (["generate", "--requant", "double,double", "-o", "OUT"],
                     "names each one once"),
    "depth without accelerator": (["generate", "--weight-depth", "128", "-o", "OUT"],
                                  "--weight-depth is an option of the accelerator: add "
                                  "--accelerator"),
    "window without accelerator": (["fpga", "--window", "3", "--window-width", "10", "-o",
                                    "OUT"], "--window is an option of the accelerator"),
    "empty output folder": (["compile", str(MODELS / "fc.tflite"), "-o", ""],
                            "the output argument is empty; give a value"),
    "output is a FIFO": (["sim", str(MODELS / "fc.tflite"), "--golden", "--input", "x.npy",
                          "--output", "fifo.npy"], "fifo.npy is not a regular file"),
    "output unwritable": (["sim", str(MODELS / "fc.tflite"), "--input", "x.npy", "--output",
                           "/proc/mxugen/y.npy"], "cannot write /proc/mxugen/y.npy"),
    "scale zero": (["compile", "scale_0.0.tflite", "-o", "OUT"],
                   "scale 0 is not a positive finite number"),
    "scale NaN": (["sim", "scale_nan.tflite", "--golden", "--input", "x.npy", "--output",
                   "OUT/y.npy"], "scale nan is not a positive finite number"),
    "no command": ([], "give a command, e.g. mxugen demo"),
    "output is the input": (["sim", str(MODELS / "fc.tflite"), "--golden", "--input", "x.npy",
                             "--output", "x.npy"],
                            "--output .*x.npy would overwrite the input .*x.npy;"),
    "output a link loop": (["sim", str(MODELS / "fc.tflite"), "--golden", "--input", "x.npy",
                            "--output", "loop1"], "loop1 is a symbolic link that leads nowhere"),
    "top a keyword": (["generate", "--top", "wire", "-o", "OUT"], "'wire' is a Verilog keyword"),
    "an empty mode": (["generate", "--requant", "double,,single", "-o", "OUT"],
                      "names each one once"),
    "clamp at infinity": (["quantize", "mlp.npz", "--input-range", "0,1", "--clamp-std", "inf",
                           "-o", "OUT"], "outlier clamping needs a positive number"),
    "output over the model": (["sim", "model.tflite", "--golden", "--input", "x.npy",
                               "--output", "model.tflite"], "would overwrite the input"),
    "output inside the dump": (["sim", str(MODELS / "fc.tflite"), "--golden", "--input",
                                "x.npy", "--output", "OUT/y.npy", "--dump", "OUT"],
                               "is inside --dump"),
    "output a dangling link": (["sim", str(MODELS / "fc.tflite"), "--golden", "--input",
                                "x.npy", "--output", "dangling"],
                               "dangling is a symbolic link to .*, which does not exist"),
    "input a FIFO": (["sim", str(MODELS / "fc.tflite"), "--golden", "--input", "fifo.npy",
                      "--output", "OUT/y.npy"], "fifo.npy: it is not a regular file"),
    "calibration a FIFO": (["quantize", "mlp.npz", "--calib", "fifo.npy", "-o", "OUT"],
                           "fifo.npy: it is not a regular file"),
    "an empty path": (["generate", "--accelerator", "--images", "", "-o", "OUT"],
                      "the images argument is empty"),
    "ice40 accelerator": (["fpga", "--accelerator", "--family", "ice40", "-o", "OUT"],
                          "--family ice40 takes the matrix unit alone"),
    "a billion jobs": (["mutate", "--jobs", "1000000000000", "-o", "OUT"],
                       "--jobs is the simulator processes run at once, at most 256"),
    "bench sim rows 0": (["bench", "sim", "--rows", "0", "--samples", "1"],
                         "rows must be an integer in 1..256, got 0"),
    "bench fpga arrays and rows": (["bench", "fpga", "--arrays", "4x4", "--rows", "4",
                                    "-o", "OUT"],
                                   "--arrays gives the arrays' shapes: leave out --rows"),
    "bench fpga an array the device cannot hold": (
        ["bench", "fpga", "--arrays", "4x4,64x64", "--device", "25k", "-o", "OUT"],
        "the 64x64 accelerator needs 408 DP16KD block RAMs .* the ECP5 25k has 56"),
    "golden with rows 0": (["sim", str(MODELS / "fc.tflite"), "--golden", "--input", "x.npy",
                            "--output", "OUT/y.npy", "--rows", "0"],
                           "rows must be an integer in 1..256, got 0"),
    "window for mutate": (["mutate", "--window", "3", "-o", "OUT"],
                          "--window is an option of the accelerator: mxugen mutate tests the "
                          "matrix unit alone"),
    "model is a folder": (["quantize", str(MODELS), "--input-range", "0,1", "-o", "OUT"],
                          "model .*models is a folder: give a model file"),
    "explore rows of 0": (["explore", "model.tflite", "--rows", "0", "-o", "OUT"],
                          "argument --rows: '0': give a comma-separated list of distinct sizes"),
    "explore unknown rounding": (["explore", "model.tflite", "--requant", "single+half",
                                  "-o", "OUT"], "sets of roundings joined by \\+"),
    "explore jobs of 0": (["explore", "model.tflite", "--jobs", "0", "-o", "OUT"],
                          "--jobs must be from 1 to 64, got 0"),
    "explore plot without place and route": (
        ["explore", "model.tflite", "--no-pnr", "--plot", "OUT/p.png", "-o", "OUT"],
        "--plot needs place and route"),
    "explore shapes it cannot build": (["explore", "model.tflite", "--rows", "3", "--cols", "2",
                                        "-o", "OUT"], "no --rows is a multiple of a --cols"),
    "explore on no scheduler": (["explore", "model.tflite", "--address", "bogus", "--no-pnr",
                                 "-o", "OUT"], "cannot reach the Dask scheduler at bogus"),
    "explore plot over the model": (["explore", "model.tflite", "--plot", "model.tflite",
                                     "-o", "OUT"], "--plot .*model.tflite would overwrite the "
                                                   "input"),
}


@pytest.mark.parametrize("case", MISTAKES)
def test_hostile_inputs_are_one_line_exit_2_and_leave_nothing(files, capsys, case):
    np.savez(files / "huge.npz", x=np.full((8, 4), 1e300))
    np.savez(files / "bad_labels.npz", x=np.zeros((4, 4)), labels=np.array([0, 1, 2, 99]))
    os.mkfifo(files / "fifo.npy")
    (files / "model.tflite").write_bytes((MODELS / "fc.tflite").read_bytes())
    (files / "dangling").symlink_to(files / "nowhere" / "y.npy")
    (files / "loop1").symlink_to(files / "loop2")
    (files / "loop2").symlink_to(files / "loop1")
    for value in (0.0, float("nan")):
        _damaged_scale(files, value)
    words, message = MISTAKES[case]
    words = [str(files / w) if w and os.path.lexists(files / w)
             else w.replace("OUT", str(files / "out")) for w in words]
    try:
        code = main(words)
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err), err
    assert not (files / "out").exists() and not (files / "nowhere").exists()
    assert (files / "fifo.npy").is_fifo()
    assert (files / "model.tflite").read_bytes() == (MODELS / "fc.tflite").read_bytes()


def test_an_interrupted_command_is_one_line_and_writes_nothing(files, capsys, monkeypatch):
    """Ctrl-C while a network is written: one line, exit 130, no folder."""
    from quantizer import files as files_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(files_module.np, "savez", interrupted)
    assert main(["quantize", str(files / "mlp.npz"), "--input-range", "0,1",
                 "-o", str(files / "out" / "net")]) == 130
    err = capsys.readouterr().err
    assert err == "mxugen: quantize interrupted; what it was writing was not written\n"
    assert not (files / "out").exists()
    assert not [p for p in files.iterdir() if p.name.startswith(".")]


def test_an_image_file_that_is_a_fifo_is_refused_not_read(tmp_path, capsys):
    """Reading a FIFO blocks forever: an images folder with one is refused first."""
    from quantizer.importers.tflite import load_tflite
    from quantizer.manifest import write_images
    from quantizer.sizing import accelerator_config
    graph = load_tflite(MODELS / "fc.tflite")
    write_images(graph, accelerator_config(graph, 2, rows=4, cols=4), 2, tmp_path / "img")
    (tmp_path / "img" / "weights.hex").unlink()
    os.mkfifo(tmp_path / "img" / "weights.hex")
    assert main(["generate", "--accelerator", "--images", str(tmp_path / "img"),
                 "-o", str(tmp_path / "out")]) == 2
    assert "weights.hex is not a regular file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_compile_refuses_to_write_into_the_network_folder(tmp_path, capsys):
    folder = tmp_path / "net"
    np.savez(tmp_path / "mlp.npz", weight_0=np.ones((3, 4)), bias_0=np.zeros(3))
    assert main(["quantize", str(tmp_path / "mlp.npz"), "--input-range", "0,1",
                 "-o", str(folder)]) == 0
    before = sorted(p.name for p in folder.iterdir())
    capsys.readouterr()
    assert main(["compile", str(folder), "--rows", "4", "--cols", "4", "-o", str(folder)]) == 2
    assert "holds a network written by mxugen quantize; choose another -o" in \
        capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == before
