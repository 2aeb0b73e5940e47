"""Reference runtimes for int8 TFLite models, for tests to compare the golden model against.

* :func:`litert` runs a model through LiteRT (``ai-edge-litert``) with its *reference* kernels
  (``OpResolverType.BUILTIN_REF``) and can return every intermediate tensor.
* :func:`tflm` runs it through TensorFlow Lite Micro's Python interpreter (``tflite-micro``).

Both take a batch of int8 inputs ``x`` of shape ``(N, *input_shape[1:])`` or
``(N, *input_shape)`` (the models have batch 1), run the samples one at a time and return the
output stacked to ``(N, *output_shape[1:])``.  Only models with one input and one output are
accepted.  Both packages are in the project's ``dev`` extra.

``python tests/oracles.py [MODEL.tflite ...]`` runs the models (default: ``tests/models/*.tflite``)
through both on random inputs and counts the bytes where the two runtimes differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

__all__ = ["litert", "tflm"]


def _batch(x: np.ndarray, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """``x`` as an array of ``(N, *shape)`` samples of ``dtype`` (``shape`` has the batch 1)."""
    x = np.asarray(x)
    if x.shape[1:] == shape[1:]:
        x = x.reshape(x.shape[0], *shape)
    elif x.shape[1:] != shape:
        raise ValueError(f"input of shape {x.shape}: expected (N, *{shape[1:]}) or (N, *{shape})")
    if x.dtype != dtype:
        info = np.iinfo(dtype)
        if not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"input of dtype {x.dtype}: the model takes {info.dtype}")
        if x.size and (x.min() < info.min or x.max() > info.max):
            raise ValueError(f"input values {x.min()}..{x.max()} outside {info.dtype}")
        x = x.astype(dtype)  # integers in range: exact
    return x


def _stack(values: list[np.ndarray]) -> np.ndarray:
    """Per-sample tensors stacked to ``(N, ...)``, the leading batch 1 dropped."""
    batch = np.stack(values)
    return batch[:, 0] if batch.ndim > 1 and batch.shape[1] == 1 else batch


def litert(model_path: str | Path, x: np.ndarray, *, all_tensors: bool = False
           ) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run ``x`` through LiteRT's reference kernels, one sample at a time.

    Returns the output, shape ``(N, *output_shape[1:])``; with ``all_tensors`` the pair
    ``(output, tensors)`` where ``tensors`` maps the name of every non-constant tensor (the model
    input and each operator's outputs) to its values, shape ``(N, *tensor_shape[1:])`` (or
    ``(N, *tensor_shape)`` for a tensor whose shape does not start with the batch 1).  A name
    used by two tensors gets ``#index`` appended to the second.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(model_path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                              experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"{model_path}: {len(inputs)} inputs, {len(outputs)} outputs; "
                         "only single-input single-output models are supported")
    inp, out = inputs[0], outputs[0]
    x = _batch(x, tuple(int(d) for d in inp["shape"]), inp["dtype"])

    names: dict[int, str] = {}
    if all_tensors:
        produced = {inp["index"]}
        for op in interpreter._get_ops_details():
            produced.update(int(i) for i in op["outputs"] if i >= 0)
        details = {d["index"]: d for d in interpreter.get_tensor_details()}
        for index in sorted(produced):
            name = details[index]["name"]
            names[index] = name if name not in names.values() else f"{name}#{index}"

    results: list[np.ndarray] = []
    tensors: dict[int, list[np.ndarray]] = {i: [] for i in names}
    for sample in x:
        interpreter.set_tensor(inp["index"], sample)
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"]).copy())
        for index in names:
            tensors[index].append(interpreter.get_tensor(index).copy())

    output = _stack(results) if results else np.empty((0, *out["shape"][1:]), out["dtype"])
    if not all_tensors:
        return output
    return output, {names[i]: _stack(v) for i, v in tensors.items() if v}


def tflm(model_path: str | Path, x: np.ndarray, *, all_tensors: bool = False,
         arena_size: int | None = None
         ) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run ``x`` through TensorFlow Lite Micro, one sample at a time; returns the output, shape
    ``(N, *output_shape[1:])``, or with ``all_tensors`` the pair ``(output, tensors)`` exactly as
    :func:`litert` does (same names, same shapes).  ``arena_size`` (bytes) defaults to ten times
    the model size plus 256 KiB."""
    from tflite_micro.python.tflite_micro import runtime

    data = Path(model_path).read_bytes()
    graph = runtime.convert_bytearray_to_object(data).subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(f"{model_path}: {len(graph.inputs)} inputs, {len(graph.outputs)} "
                         "outputs; only single-input single-output models are supported")
    if arena_size is None:
        arena_size = 10 * len(data) + (256 << 10)
    config = (runtime.InterpreterConfig.kPreserveAllTensors if all_tensors
              else runtime.InterpreterConfig.kAllocationRecording)
    interpreter = runtime.Interpreter.from_bytes(data, arena_size=arena_size,
                                                 intrepreter_config=config)
    inp, out = interpreter.get_input_details(0), interpreter.get_output_details(0)
    x = _batch(x, tuple(int(d) for d in inp["shape"]), inp["dtype"])

    names: dict[int, str] = {}
    if all_tensors:
        produced = {int(graph.inputs[0])}
        for op in graph.operators or []:
            produced.update(int(i) for i in op.outputs if i >= 0)
        for index in sorted(produced):
            name = graph.tensors[index].name.decode()
            names[index] = name if name not in names.values() else f"{name}#{index}"

    results: list[np.ndarray] = []
    tensors: dict[int, list[np.ndarray]] = {i: [] for i in names}
    for sample in x:
        interpreter.set_input(sample, 0)
        interpreter.invoke()
        results.append(np.array(interpreter.get_output(0), copy=True))
        for index in names:
            tensors[index].append(np.array(interpreter.GetTensor(index, 0)["tensor_data"]))

    output = (_stack(results) if results
              else np.empty((0, *out["shape"][1:]), out["dtype"]))
    if not all_tensors:
        return output
    return output, {names[i]: _stack(v) for i, v in tensors.items() if v}


def _compare(paths: list[Path], samples: int = 256, seed: int = 0) -> int:
    """Run every model through both runtimes on the same random int8 inputs; print shapes and
    the number of bytes where they differ, in the output and in all non-constant tensors.
    Returns the number of models on which a runtime failed."""
    failures = 0
    print(f"{'model':20s} {'input':>16s} {'output':>14s} {'tensors':>7s} "
          f"{'differing output bytes':>25s} {'all tensors':>15s}")
    for path in paths:
        graph_input = _input_shape(path)
        x = np.random.default_rng(seed).integers(-128, 128, (samples, *graph_input[1:]), np.int8)
        row = f"{path.stem:20s} {str(x.shape):>16s}"
        results = {}
        for runtime in (litert, tflm):
            try:
                results[runtime.__name__] = runtime(path, x, all_tensors=True)
            except Exception as error:  # noqa: BLE001 - report and go on
                print(f"{row}  {runtime.__name__} FAILED: {type(error).__name__}: {error}")
        if len(results) < 2:
            failures += 1
            continue
        (ref, ref_t), (micro, micro_t) = results["litert"], results["tflm"]
        if micro.shape != ref.shape or ref_t.keys() != micro_t.keys():
            print(f"{row}  output shapes {ref.shape} / {micro.shape} or tensor names differ")
            failures += 1
            continue
        differ = int((ref != micro).sum())
        worst = int(np.abs(ref.astype(int) - micro.astype(int)).max())
        all_differ = sum(int((ref_t[k] != micro_t[k]).sum()) for k in ref_t)
        all_size = sum(v.size for v in ref_t.values())
        print(f"{row} {str(ref.shape):>14s} {len(ref_t):7d} {differ:>10d}/{ref.size:<7d}"
              f"{f'max|d|={worst}' if worst else '':>7s} {all_differ:>7d}/{all_size:<7d}")
    return failures


def _input_shape(path: Path) -> tuple[int, ...]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    return tuple(int(d) for d in interpreter.get_input_details()[0]["shape"])


if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:]] or sorted(
        (Path(__file__).parent / "models").glob("*.tflite"))
    sys.exit(1 if _compare(args) else 0)
