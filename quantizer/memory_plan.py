"""Where tensors live in the accelerator's activation memory, and how their values are laid out
there (docs/images.md).

A tensor that an accelerator layer reads or writes (:meth:`Partition.resident`) gets a region
of ``⌈C/rows⌉ · samples · H · W`` words, group-major: word ``base + g·(N·H·W) + (n·H + h)·W + w``
holds channels ``g·rows … g·rows + rows − 1`` of pixel ``(n, h, w)``, lanes past the last
channel the tensor's zero point (a vector is a 1×1 map). Regions are reused once a tensor is
dead: a tensor lives from the operator that writes it (the graph's input: from the start) to
the last operator that reads it (the graph's output: to the end); two tensors share words only
when their lives do not overlap. The inputs of a concatenation done by addressing are views:
runs of the output's channel groups, written in place by the layers that compute them. A
tensor the host writes as a layer's patches (:attr:`Partition.patches`) is held as the map of
those patches, ``OH × OW × KH·KW·Cin``. A tensor that only stride-2 layers in quad mode read
(:func:`blocked_tensors`) is held in blocks of 2×2 pixels instead, a block in four consecutive
words (a row of a window build's activation memory): pixel ``(n, y, x)`` of group ``g`` at
``base + g·plane + ((n·⌈H/2⌉ + y div 2)·⌈W/2⌉ + x div 2)·4 + 2·(y mod 2) + x mod 2``, with
``plane = 4·N·⌈H/2⌉·⌈W/2⌉``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hw import contract
from hw.contract import WordFormat

from .errors import QuantizerError
from .layers import Patches, map_shape
from .partition import ACCELERATOR, Partition

if TYPE_CHECKING:
    from hw import ArrayConfig

__all__ = ["MemoryPlan", "TensorPlacement", "activation_layout", "blocked_tensors",
           "decode_activations", "plan_memory"]


def activation_layout(x: np.ndarray, rows: int, zero_point: int) -> np.ndarray:
    """An NHWC tensor ``(N, H, W, C)`` (or vectors ``(N, C)``, a 1x1 map) → its activation
    words' lanes ``(G·N·H·W, rows)``, group-major, lanes past the last channel
    ``zero_point``."""
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[:, None, None, :]
    n, h, w, c = x.shape
    groups = -(-c // rows)
    padded = np.full((n, h, w, groups * rows), zero_point, dtype=np.int64)
    padded[..., :c] = x
    return padded.reshape(n * h * w, groups, rows).transpose(1, 0, 2).reshape(-1, rows)


def decode_activations(words, rows: int, pixels: int, size: int,
                       dtype: str = "int8") -> np.ndarray:
    """Activation-memory words (group-major, ``rows`` lanes: word ``g·pixels + i`` holds
    channels ``g·rows …`` of pixel ``i``) → values ``(pixels, size)``."""
    word = WordFormat("activation word", [contract.data_field("x", dtype, rows)])
    lanes = word.unpack_array(words)["x"]
    values = lanes.reshape(-1, pixels, rows).transpose(1, 0, 2).reshape(pixels, -1)
    return values[:, :size]


@dataclass(frozen=True)
class TensorPlacement:
    """One tensor's region of activation memory for a run of ``samples`` inputs.

    Attributes
    ----------
    name, base, words : the tensor and its words ``base … base + words − 1``.
    map_shape : ``(h, w, c)`` of one sample (a vector is ``(1, 1, c)``).
    sample_shape : the tensor's own shape without the batch.
    samples, dtype, zero_point : the run's batch; the tensor's type and zero point (the
        value of unused lanes).
    patches : how the region holds the tensor's patches (``map_shape`` is theirs), or None.
    blocks : the maps are held in blocks of 2×2 pixels (for layers in quad mode).
    """

    name: str
    base: int
    words: int
    map_shape: tuple[int, int, int]
    sample_shape: tuple[int, ...]
    samples: int
    dtype: str
    zero_point: int
    patches: Patches | None = None
    blocks: bool = False

    def to_dict(self) -> dict:
        """Plain values (JSON): :meth:`from_dict` makes the placement again."""
        return {**vars(self), "patches": self.patches and self.patches.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> TensorPlacement:
        patches = values.get("patches")
        return cls(**{**values, "map_shape": tuple(values["map_shape"]),
                      "sample_shape": tuple(values["sample_shape"]),
                      "patches": patches and Patches.from_dict(patches)})

    @property
    def pixels(self) -> int:
        """The words of one channel group: the batch's pixels (in blocks, those of maps
        rounded up to even heights and widths)."""
        h, w = self.map_shape[:2]
        if self.blocks:
            h, w = h + h % 2, w + w % 2
        return self.samples * h * w

    def _to_blocks(self, x: np.ndarray) -> np.ndarray:
        """Maps ``(N, H, W, C)`` → their 2×2 blocks' pixels in memory order, as a map
        ``(N·H'·W', 1, 1, C)`` (``H'``, ``W'`` rounded up to even, the padding the zero
        point)."""
        n, h, w, c = x.shape
        padded = np.full((n, h + h % 2, w + w % 2, c), self.zero_point, dtype=np.int64)
        padded[:, :h, :w] = x
        blocks = padded.reshape(n, (h + 1) // 2, 2, (w + 1) // 2, 2, c).transpose(0, 1, 3, 2,
                                                                                    4, 5)
        return blocks.reshape(-1, 1, 1, c)

    def _from_blocks(self, values: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`_to_blocks`: ``(N·H'·W', C)`` → ``(N, H, W, C)``."""
        h, w = self.map_shape[:2]
        blocks = values.reshape(self.samples, (h + 1) // 2, (w + 1) // 2, 2, 2, -1)
        return blocks.transpose(0, 1, 3, 2, 4, 5).reshape(
            self.samples, h + h % 2, w + w % 2, -1)[:, :h, :w]

    def pack(self, x: np.ndarray, config: ArrayConfig) -> list[int]:
        """Values ``(samples, *sample_shape)`` → the region's words."""
        x = np.asarray(x)
        if x.shape != (self.samples, *self.sample_shape):
            raise QuantizerError(f"{self.name}: values must have shape "
                                 f"{(self.samples, *self.sample_shape)}, got {x.shape}")
        if self.patches is not None:
            x = self.patches.of(x)
        x = x.reshape(self.samples, *self.map_shape)
        if self.blocks:
            x = self._to_blocks(x)
        lanes = activation_layout(x, config.rows, self.zero_point)
        word = contract.activation_format(config)
        try:
            return word.pack_array({"x": lanes})
        except contract.ContractError as exc:
            raise QuantizerError(f"{self.name}: {exc}") from None

    def unpack(self, words, config: ArrayConfig) -> np.ndarray:
        """The region's words → values ``(samples, *sample_shape)``."""
        if self.patches is not None:
            raise QuantizerError(f"{self.name} is held as a layer's patches: its values cannot "
                                 "be read back from them")
        values = decode_activations(words, config.rows, self.pixels, self.map_shape[2],
                                    config.dtype)
        if self.blocks:
            values = self._from_blocks(values)
        return values.reshape(self.samples, *self.sample_shape)


@dataclass(frozen=True)
class MemoryPlan:
    """The regions of every resident tensor (:class:`TensorPlacement` by name) and the words
    of activation memory they span."""

    tensors: dict[str, TensorPlacement]
    words: int


def blocked_tensors(part: Partition, config: ArrayConfig, samples: int) -> frozenset[str]:
    """The resident tensors of ``part`` to hold in blocks of 2×2 pixels on ``config`` at
    ``samples`` samples a run: those read on the accelerator only by layers that can run in
    quad mode (:meth:`~quantizer.layers.AcceleratorLayer.quads`), and written by the host or
    by a layer whose passes are whole samples; not a view of a concatenation nor a tensor
    made of views, nor one held as patches. The host reads and writes any tensor in its own
    layout (:meth:`TensorPlacement.pack`)."""
    if config.act_words_per_row != 4:
        return frozenset()
    readers: dict[str, list] = {}
    writers = {layer.output: layer for layer in part.layers}
    for layer in part.layers:
        for name in layer.reads:
            readers.setdefault(name, []).append(layer)
    excluded = set(part.views) | {whole for whole, _ in part.views.values()} | set(part.patches)

    def whole_samples(layer) -> bool:
        return all(p.rows == layer.oh for p in layer.passes(samples, config.psum_depth))
    return frozenset(
        name for name, layers in readers.items()
        if name not in excluded and (name not in writers or whole_samples(writers[name]))
        and all(layer.reads == (name,) and layer.quads(config, samples) for layer in layers))


def plan_memory(part: Partition, rows: int, samples: int, *, keep_all: bool = False,
                align: int = 1, blocked: frozenset[str] = frozenset()) -> MemoryPlan:
    """Regions for the resident tensors of ``part`` on an array of ``rows`` rows, for runs of
    ``samples`` inputs; with ``keep_all`` no region is reused, so every tensor can be read
    back after a run. First fit, in the order tensors are written, each region a whole
    number of ``align``-word memory rows (:attr:`hw.ArrayConfig.act_words_per_row`): no two
    tensors share a row, and every tensor starts on one. The tensors in ``blocked`` are held
    in blocks of 2×2 pixels (:func:`blocked_tensors`)."""
    graph = part.graph
    born, dies = _lives(part)
    forever = float("inf")
    live: list[tuple[int, int, float]] = []  # (base, end, death) sorted by base
    tensors: dict[str, TensorPlacement] = {}
    top = 0
    patched = part.patches
    for name in sorted(part.resident(), key=lambda n: born[n]):
        tensor = graph.tensor(name)
        shape = patched[name].map_shape if name in patched else map_shape(tensor)
        if shape is None:
            raise QuantizerError(f"{name} of shape {tensor.shape} is neither an NHWC map nor a "
                                 "vector: activation memory cannot hold it")
        h, w = shape[:2]
        if name in blocked:
            h, w = h + h % 2, w + w % 2
        words = -(-shape[2] // rows) * samples * h * w
        rounded = -(-words // align) * align
        live = [region for region in live if region[2] >= born[name]]
        base = 0
        for start, end, _ in live:
            if start - base >= rounded:
                break
            base = max(base, end)
        death = forever if keep_all or name in graph.outputs else dies.get(name, born[name])
        live = sorted([*live, (base, base + rounded, death)])
        top = max(top, base + rounded)
        tensors[name] = TensorPlacement(name, base, words, shape, tuple(tensor.sample_shape),
                                        samples, tensor.dtype, tensor.zp, patched.get(name),
                                        name in blocked)
    # A view is a run of whole channel groups of the tensor it is part of: group-major, its
    # words are contiguous there (the same samples × H × W pixels a group).
    for name, (whole, channel) in part.views.items():
        tensor, region = graph.tensor(name), tensors[whole]
        pixels = region.pixels
        tensors[name] = TensorPlacement(
            name, region.base + channel // rows * pixels, -(-tensor.shape[-1] // rows) * pixels,
            map_shape(tensor), tuple(tensor.sample_shape), samples, tensor.dtype, tensor.zp)
    return MemoryPlan(tensors, top)


def _lives(part: Partition) -> tuple[dict[str, int], dict[str, int]]:
    """When each tensor is written and last read: indices of the operators in the order they
    run (−1 for the graph's input)."""
    born = {name: -1 for name in part.graph.inputs}
    dies: dict[str, int] = {}

    def whole(name: str) -> str:  # a view lives and dies with the tensor it is part of
        return part.views.get(name, (name,))[0]

    for time, placement in enumerate(p for step in part.steps for p in step.placements):
        reads = placement.layer.reads if placement.where == ACCELERATOR else \
            [n for n in placement.op.inputs if n is not None]
        for name in reads:
            dies[whole(name)] = time
        for name in placement.op.outputs:
            born.setdefault(whole(name), time)
    return born, dies
