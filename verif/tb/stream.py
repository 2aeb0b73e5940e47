"""Stream driver and monitor for Amaranth ``lib.stream`` ports (``<name>__valid``,
``<name>__ready``, ``<name>__payload``), in the style of cocotbext-axi: small classes, one job
each, no checking (that is the scoreboard's)."""

from __future__ import annotations

from collections import deque
from typing import Callable

import cocotb
import numpy as np
from amaranth.lib import data
from cocotb.simtime import get_sim_time
from cocotb.triggers import ReadOnly, RisingEdge

from .bits import pack, unpack


def _port(scope, name: str, member: str):
    return getattr(scope, f"{name}__{member}", None)


class StreamDriver:
    """Offers queued payloads on a stream, one per cycle while the sink is ready.

    With ``idle_probability > 0`` it randomly withholds ``valid`` to exercise stalls.

    Attributes
    ----------
    sent : beats transferred.
    stalls : cycles a beat was offered but not accepted, counted from the first transfer on
        (before it, the sink may legitimately wait for configuration).
    first_transfer : simulation time, in simulator steps (exact integers), of the clock edge
        that took the first beat.
    """

    def __init__(self, clock, scope, name: str, layout: data.Layout, *,
                 rng: np.random.Generator | None = None, idle_probability: float = 0.0):
        self.clock = clock
        self.valid, self.ready = _port(scope, name, "valid"), _port(scope, name, "ready")
        self.payload = _port(scope, name, "payload")
        self.layout = layout
        self.rng, self.idle_probability = rng, idle_probability
        self.queue: deque = deque()
        self.sent = 0
        self.stalls = 0
        self.first_transfer: int | None = None
        cocotb.start_soon(self._drive())

    def send(self, item) -> None:
        self.queue.append(item)

    @property
    def idle(self) -> bool:
        return not self.queue

    async def _drive(self) -> None:
        self.valid.value = 0
        while True:
            offer = bool(self.queue) and not (
                self.idle_probability and self.rng.random() < self.idle_probability)
            self.valid.value = int(offer)
            if offer:
                self.payload.value = pack(self.layout, self.queue[0])
            await ReadOnly()
            fired = offer and (self.ready is None or int(self.ready.value) == 1)
            if offer and not fired and self.sent:
                self.stalls += 1
            await RisingEdge(self.clock)
            if fired:
                if self.first_transfer is None:
                    self.first_transfer = get_sim_time("step")
                self.queue.popleft()
                self.sent += 1


class StreamMonitor:
    """Calls ``callback`` with every beat transferred on a stream (unpacked with ``layout``);
    ``first_transfer`` is the time of the first beat in simulator steps (sampled after the
    edge that made it)."""

    def __init__(self, clock, scope, name: str, layout: data.Layout,
                 callback: Callable[[data.Const], None]):
        self.clock = clock
        self.valid, self.ready = _port(scope, name, "valid"), _port(scope, name, "ready")
        self.payload = _port(scope, name, "payload")
        self.layout, self.callback = layout, callback
        self.received = 0
        self.first_transfer: int | None = None
        cocotb.start_soon(self._watch())

    async def _watch(self) -> None:
        while True:
            await RisingEdge(self.clock)
            await ReadOnly()
            if int(self.valid.value) and (self.ready is None or int(self.ready.value)):
                if self.first_transfer is None:
                    self.first_transfer = get_sim_time("step")
                self.received += 1
                self.callback(unpack(self.layout, self.payload.value))
