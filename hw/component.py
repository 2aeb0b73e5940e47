"""The base of every component the generator builds for one hardware configuration."""

from __future__ import annotations

from amaranth.lib import wiring

from .config import ArrayConfig

__all__ = ["ConfiguredComponent"]


class ConfiguredComponent(wiring.Component):
    """A :class:`amaranth.lib.wiring.Component` built for one :class:`~hw.config.ArrayConfig`,
    which it keeps as :attr:`config`.

    Parameters
    ----------
    config : the hardware configuration.
    signature : the component's signature members, as ``wiring.Component`` takes them.
    """

    def __init__(self, config: ArrayConfig, signature: dict):
        self._config = config
        super().__init__(signature)

    @property
    def config(self) -> ArrayConfig:
        return self._config
