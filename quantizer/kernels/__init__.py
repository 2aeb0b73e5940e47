"""The golden model: one kernel per TFLite operator, the way TFLite organises its reference
kernels (``tensorflow/lite/kernels/internal/reference/``).

Each kernel module registers its operator kinds with :func:`kernel`. A registered function
takes the operator, the graph (for tensor parameters), the input values (activations batch
first, constants as stored, ``None`` for an omitted optional input) and the runtime whose
arithmetic to follow, and returns the output values.

Where LiteRT's reference kernels and TFLite Micro compute differently (rounding of the
requantization, mostly), the module says so in :data:`ROUNDING` per operator and runtime;
docs/arithmetic.md tabulates what was measured against both interpreters.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import QuantizerError
from ..graph import Graph, Operator

#: The runtimes whose arithmetic the golden model reproduces.
RUNTIMES = ("litert", "tflm")

Kernel = Callable[[Operator, Graph, list, str], np.ndarray]
KERNELS: dict[str, Kernel] = {}


def kernel(*kinds: str) -> Callable[[Kernel], Kernel]:
    """Register a function as the golden kernel of the TFLite operator ``kinds``."""
    def register(function: Kernel) -> Kernel:
        for kind in kinds:
            KERNELS[kind] = function
        return function
    return register


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise QuantizerError(f"unknown runtime {runtime!r} to match: choose one of "
                             f"{', '.join(RUNTIMES)}")
    return runtime


def evaluate(op: Operator, graph: Graph, inputs: list, runtime: str) -> np.ndarray:
    """Run one operator of ``graph`` on ``inputs`` with ``runtime``'s arithmetic."""
    try:
        function = KERNELS[op.kind]
    except KeyError:
        raise QuantizerError(f"no golden kernel for operator {op.kind} ({op.name})") from None
    return function(op, graph, inputs, check_runtime(runtime))


# Importing the kernel modules registers them.
from . import (add, concatenation, conv, depthwise_conv, fully_connected, mean,  # noqa: E402,F401
               pad, pooling, reshape, softmax)
