"""SCALE-Sim (``scalesim`` on PyPI), weight-stationary, on the layers mxugen runs: the
reference the cycle model is cross-checked against (docs/performance.md, "Cross-check with
SCALE-Sim").

SCALE-Sim is fed GEMMs, not convolutions: its conv mode has no batch, padding or dilation,
and in weight-stationary mode its cycles depend only on the GEMM its im2col lowers a
convolution to (M = OH·OW, K = FH·FW·C, N = filters). It runs in its estimate-bandwidth mode
(``InterfaceBandwidth: CALC``), where DRAM is as fast as the array needs, so its "Total Cycles"
are the array's own timing with no stall: our operands are in on-chip memories too.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from unittest import mock

from hw import ArrayConfig

from .errors import SimulationError

#: COMPUTE_REPORT.csv's columns, as the keys :func:`scalesim_gemm_cycles` returns them.
REPORT_COLUMNS = {
    "Total Cycles (incl. prefetch)": "cycles_with_prefetch",
    "Total Cycles": "cycles",
    "Stall Cycles": "stall_cycles",
    "Overall Util %": "overall_util_percent",
    "Mapping Efficiency %": "mapping_efficiency_percent",
    "Compute Util %": "compute_util_percent",
}

_CONFIG = """\
[general]
run_name = mxugen

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {ifmap_kb}
FilterSramSzkB: {filter_kb}
OfmapSramSzkB: {ofmap_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Dataflow: ws
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 1
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 1
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


def scalesim_gemm_cycles(config: ArrayConfig,
                         shapes: Sequence[tuple[int, int, int]]) -> list[dict]:
    """Run SCALE-Sim, weight-stationary, on M×K×N GEMMs on the array of ``config``.

    SCALE-Sim's array height is ``config.rows`` (K, filter elements) and its width
    ``config.cols`` (N, filters), as in mxugen. Its SRAMs are the accelerator's memories
    (activations for the input and output maps, weights for the filters); they only change
    ``cycles_with_prefetch``.

    Parameters
    ----------
    config : the array (rows, cols and memory depths).
    shapes : ``(m, k, n)`` per layer: M vectors of K values times a K×N weight matrix.

    Returns
    -------
    One dict per shape, in order: ``m``, ``k``, ``n`` and SCALE-Sim's COMPUTE_REPORT.csv
    (:data:`REPORT_COLUMNS`): ``cycles`` ("Total Cycles", the array's compute timing),
    ``stall_cycles``, ``cycles_with_prefetch`` (plus its estimate of the DRAM prefetch and
    drain, which grows with the SRAM sizes), and its utilization percentages.
    """
    shapes = [tuple(shape) for shape in shapes]
    for number, shape in enumerate(shapes):
        if len(shape) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                      for v in shape):
            raise ValueError(f"GEMM shape #{number} must be three positive integers "
                             f"(m, k, n), got {shape!r}")
    if not shapes:
        raise ValueError("no GEMM shape to simulate")
    scalesim = _import_scalesim()
    with tempfile.TemporaryDirectory(prefix="mxugen-scalesim-") as tmp:
        root = Path(tmp)
        activation_kb = _kilobytes(config.act_depth * config.rows)
        (root / "scale.cfg").write_text(_CONFIG.format(
            rows=config.rows, cols=config.cols, ifmap_kb=activation_kb, ofmap_kb=activation_kb,
            filter_kb=_kilobytes(config.weight_depth * config.cols * config.weight_bits // 8)))
        # GEMM topology: M, N, K (in that order); SCALE-Sim drops each row's last field, hence
        # the trailing commas.
        (root / "gemm.csv").write_text("Layer, M, N, K,\n" + "".join(
            f"layer{i}, {m}, {n}, {k},\n" for i, (m, k, n) in enumerate(shapes)))
        # Read even when no custom layout is used.
        (root / "layout.csv").write_text("Layer,\n")
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log), _numpy_2_4_compatible():
                run = scalesim(save_disk_space=True, verbose=False,
                               config=str(root / "scale.cfg"), topology=str(root / "gemm.csv"),
                               layout=str(root / "layout.csv"), input_type_gemm=True)
                run.run_scale(top_path=str(root))
        except Exception as err:
            raise SimulationError(f"SCALE-Sim failed on {shapes}: {err!r}; it printed:\n"
                                  f"{log.getvalue()}") from err
        with open(root / "mxugen" / "COMPUTE_REPORT.csv", newline="") as report:
            rows = list(csv.DictReader(report, skipinitialspace=True))
    return [{"m": m, "k": k, "n": n, **_report_items(row)}
            for (m, k, n), row in zip(shapes, rows, strict=True)]


def layer_gemm(config: ArrayConfig, layer, samples: int, *,
               dense_k: bool = False) -> tuple[int, int, int]:
    """The GEMM ``(m, k, n)`` of a :class:`~quantizer.layers.AcceleratorLayer` on ``samples``
    inputs.

    Parameters
    ----------
    config : the array; its rows pad each kernel tap's channels.
    layer : the layer, weights ``(Cout, KH, KW, Cin)``.
    samples : inputs in the batch: ``M = samples·OH·OW``.
    dense_k : ``False`` for the GEMM mxugen's address generator runs, each tap's channels
        padded to whole groups of rows, ``K = KH·KW·⌈Cin/rows⌉·rows``
        (:func:`quantizer.cycles.layer_cycles`); ``True`` for the one SCALE-Sim's im2col
        runs, taps packed densely, ``K = KH·KW·Cin``.

    Returns
    -------
    ``(M, K, N)`` with ``N = Cout``.
    """
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    cout, kh, kw, cin = layer.kernel.shape
    groups = cin if dense_k else -(-cin // config.rows) * config.rows
    return samples * layer.pixels, kh * kw * groups, cout


def scalesim_cycles(config: ArrayConfig, layers: Sequence, samples: int, *,
                    dense_k: bool = False) -> list[dict]:
    """Run SCALE-Sim, weight-stationary, on a chain of
    :class:`~quantizer.layers.AcceleratorLayer` on the array (:func:`quantizer.layers.lower`;
    SCALE-Sim has no counterpart of the vector unit's layers).

    Parameters
    ----------
    config : the array.
    layers : the layers, first to last.
    samples : inputs in the batch.
    dense_k : which GEMM of a convolution to simulate (:func:`layer_gemm`): ``False`` the one
        mxugen runs, ``True`` the one SCALE-Sim would run for the same convolution.

    Returns
    -------
    One dict per layer: ``name`` and what :func:`scalesim_gemm_cycles` returns.
    """
    shapes = [layer_gemm(config, layer, samples, dense_k=dense_k) for layer in layers]
    return [{"name": layer.name, **result}
            for layer, result in zip(layers, scalesim_gemm_cycles(config, shapes))]


def _import_scalesim():
    try:
        from scalesim.scale_sim import scalesim
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "SCALE-Sim is not installed: pip install -e '.[dev]' "
            "(or pip install 'scalesim>=3.0,<3.1')") from err
    return scalesim


@contextlib.contextmanager
def _numpy_2_4_compatible() -> Iterator[None]:
    """SCALE-Sim 3.0.0 takes ``int()`` of a one-element array of output-write cycles, a
    TypeError since NumPy 2.4 (scalesim-project/SCALE-Sim#160): while it runs, its output
    buffer returns those cycles as a flat array, whose elements are scalars (same values)."""
    from scalesim.memory.write_buffer import write_buffer
    service_writes = write_buffer.service_writes

    def flat_service_writes(self, *args, **kwargs):
        return service_writes(self, *args, **kwargs).reshape(-1)

    with mock.patch.object(write_buffer, "service_writes", flat_service_writes):
        yield


def _kilobytes(size: int) -> int:
    """SCALE-Sim's SRAM sizes are whole kB."""
    return max(1, math.ceil(size / 1024))


def _report_items(row: dict) -> dict:
    return {key: int(row[column]) if "cycles" in key else float(row[column])
            for column, key in REPORT_COLUMNS.items()}
