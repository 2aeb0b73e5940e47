"""What the multiply-accumulate kernels share: their requantization parameters, derived from the
tensors' scales the way TFLite's Prepare derives them, and the rounding each runtime uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import QuantizerError
from ..fixedpoint import quantize_multipliers
from ..graph import Graph, Operator, Tensor, activation_range


@dataclass(frozen=True)
class MacParams:
    """Integer parameters of a fully-connected, convolution or depthwise operator: everything
    the golden kernel and the accelerator's parameter words need."""

    input_zero_point: int
    weight_zero_point: int
    output_zero_point: int
    m0: np.ndarray
    shift: np.ndarray
    act_min: int
    act_max: int
    rounding: str


def output_multipliers(input_: Tensor, weights: Tensor, output: Tensor,
                       channels: int) -> tuple[np.ndarray, np.ndarray]:
    """``(m0, shift)`` per output channel of ``s_in · s_w[c] / s_out``, in double precision and
    in that order, as TFLite's ``PopulateConvolutionQuantizationParams``."""
    w_scale = weights.scale if weights.per_channel else np.full(channels, weights.scale[0])
    if w_scale.size != channels:
        raise QuantizerError(f"{weights.name}: {w_scale.size} weight scales for {channels} "
                             "output channels")
    return quantize_multipliers(input_.scalar_scale * w_scale / output.scalar_scale)


def mac_params(op: Operator, graph: Graph, rounding: dict[str, str], runtime: str,
               channels: int) -> MacParams:
    """The :class:`MacParams` of ``op``; ``rounding`` maps each runtime to its rounding mode,
    overridden by an operator's own ``rounding`` option (networks mxugen quantized itself)."""
    input_, weights = graph.op_inputs(op)[:2]
    output = graph.op_output(op)
    m0, shift = output_multipliers(input_, weights, output, channels)
    act_min, act_max = activation_range(op.activation, output)
    return MacParams(input_.zp, weights.zp, output.zp, m0, shift, act_min, act_max,
                     op.options.get("rounding") or rounding[runtime])


def bias_values(bias, channels: int) -> np.ndarray | None:
    if bias is None:
        return None
    bias = np.asarray(bias).reshape(-1)
    if bias.size != channels:
        raise QuantizerError(f"bias has {bias.size} values for {channels} output channels")
    return bias
