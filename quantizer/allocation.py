"""Mixed precision: a weight format for each layer, the narrowest that keep the network within
an accuracy budget.

Layers differ in how much a narrow weight costs them: a layer's sensitivity to a format is the
score lost when it alone takes that format and every other layer keeps int8 (the score is the
accuracy on labelled data, or the output's SQNR against the float model without labels). The
allocation then narrows layers greedily, the move that saves the most weight bits for the
least sensitivity first, keeping a move only if the whole network, measured again with every
move so far, stays within ``max_drop`` of uniform int8: sensitivities add only roughly, the
measurement is what decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tqdm import tqdm

from .errors import QuantizerError
from .graph import Graph
from .weights import WEIGHT_FORMATS, layer_formats

#: The formats an allocation narrows a layer to, besides int8 (binary needs a layer that can
#: live without zeros, and is left to a user's choice by name).
CANDIDATES = ("int4", "ternary_asym", "int2", "ternary")


@dataclass(frozen=True)
class Allocation:
    """An allocation's outcome.

    Attributes
    ----------
    formats : each layer's weight format.
    baseline : the score of uniform int8.
    score : the score of ``formats``.
    sensitivity : per layer, the score lost with that layer alone at each candidate format.
    path : the moves kept, in order: ``(layer, format, weight bits of the network, score)``.
    """

    formats: dict[str, str]
    baseline: float
    score: float
    sensitivity: dict[str, dict[str, float]]
    path: list[tuple[str, str, int, float]] = field(default_factory=list)

    def report(self, weights: Mapping[str, int], fixed: Mapping[str, str]) -> dict:
        """The outcome as JSON-ready figures: scores, weight bytes against int8, each layer's
        format (``fixed`` if the user gave it) and sensitivities, the path in bytes."""
        return {"int8_score": round(self.baseline, 2), "score": round(self.score, 2),
                "weight_bytes": -(-weight_bits(self.formats, weights) // 8),
                "weight_bytes_int8": weight_bits(dict.fromkeys(weights, "int8"), weights) // 8,
                "layers": [{"layer": name, "weights": weights[name], "format": fmt,
                            "fixed": name in fixed,
                            "drop_alone": {f: round(v, 2) for f, v in
                                           self.sensitivity.get(name, {}).items()}}
                           for name, fmt in self.formats.items()],
                "path": [{"layer": name, "format": fmt, "weight_bytes": -(-bits // 8),
                          "score": round(value, 2)} for name, fmt, bits, value in self.path]}


def weight_bits(formats: Mapping[str, str], weights: Mapping[str, int]) -> int:
    """Bits of every layer's weights at ``formats`` (``weights``: each layer's count)."""
    return sum(weights[name] * WEIGHT_FORMATS[fmt] for name, fmt in formats.items())


def allocate_formats(quantize: Callable[[dict[str, str]], Graph],
                     score: Callable[[Graph], float], weights: Mapping[str, int],
                     max_drop: float, *, fixed: Mapping[str, str] | None = None,
                     candidates: tuple[str, ...] = CANDIDATES,
                     progress: bool | None = None) -> Allocation:
    """The narrowest formats found for the layers ``weights`` counts (name → number of
    weights) whose network scores within ``max_drop`` of uniform int8; ``fixed`` layers keep
    the format given. ``quantize(formats)`` makes the network, ``score(network)`` rates it
    (higher is better)."""
    if not max_drop >= 0:
        raise QuantizerError(f"the budget must be a drop of 0 or more, got {max_drop}")
    fixed = dict(fixed or {})
    start = layer_formats(fixed, list(weights))  # checks the names and formats
    free = [name for name in weights if name not in fixed]
    uniform = dict.fromkeys(weights, "int8")
    bar = tqdm(total=1 + 2 * len(free) * len(candidates), desc="allocating widths",
               unit="network", disable=None if progress is None else not progress)

    def measure(formats: dict[str, str]) -> float:
        bar.update()
        return score(quantize(formats))

    baseline = measure(uniform)
    sensitivity = {name: {fmt: baseline - measure({**uniform, name: fmt})
                          for fmt in candidates} for name in free}
    # Moves from int8 to each candidate, the most bits saved per point of sensitivity first.
    moves = sorted(((name, fmt) for name in free for fmt in candidates),
                   key=lambda move: -weights[move[0]] * (8 - WEIGHT_FORMATS[move[1]]) /
                   max(sensitivity[move[0]][move[1]], 1e-3))
    formats, current = start, measure(start) if start != uniform else baseline
    path = []
    for name, fmt in moves:
        if WEIGHT_FORMATS[fmt] >= WEIGHT_FORMATS[formats[name]]:
            continue  # the layer is already as narrow
        trial = {**formats, name: fmt}
        result = measure(trial)
        if baseline - result <= max_drop:
            formats, current = trial, result
            path.append((name, fmt, weight_bits(formats, weights), result))
    bar.close()
    return Allocation(formats, baseline, current, sensitivity, path)
