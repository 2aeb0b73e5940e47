"""Scoreboard: expected vectors from the golden model, compared exactly with what the DUT
sends, in order."""

from __future__ import annotations

from collections import deque

import numpy as np


class Scoreboard:
    """In-order exact comparison. ``expect`` queues a golden vector with a description of where
    it came from; ``receive`` compares the next DUT vector with it; ``check`` raises an
    ``AssertionError`` naming the first mismatches (index, lane, expected, got)."""

    def __init__(self, name: str, max_reported: int = 8):
        self.name = name
        self.max_reported = max_reported
        self.expected: deque = deque()
        self.matched = 0
        self.mismatches: list[str] = []

    def expect(self, vector, context: str) -> None:
        self.expected.append((np.asarray(vector, dtype=np.int64), context))

    def receive(self, vector) -> None:
        got = np.asarray(list(vector), dtype=np.int64)
        index = self.matched + len(self.mismatches)
        if not self.expected:
            self.mismatches.append(f"#{index}: unexpected extra output {got.tolist()}")
            return
        want, context = self.expected.popleft()
        if np.array_equal(want, got):
            self.matched += 1
            return
        lanes = np.flatnonzero(want != got)
        detail = ", ".join(f"lane {i}: expected {want[i]}, got {got[i]}" for i in lanes[:4])
        self.mismatches.append(f"#{index} ({context}): {detail}")

    @property
    def pending(self) -> int:
        return len(self.expected)

    def check(self) -> None:
        problems = list(self.mismatches)
        if self.expected:
            problems.append(f"{len(self.expected)} expected outputs never arrived "
                            f"(first: {self.expected[0][1]})")
        if problems:
            shown = "; ".join(problems[:self.max_reported])
            more = len(problems) - self.max_reported
            raise AssertionError(
                f"{self.name}: {len(problems)} problem(s) after {self.matched} matches: {shown}"
                + (f" (+{more} more)" if more > 0 else ""))
