"""mxugen hardware generator: weight-stationary int8 systolic matrix units in Amaranth."""

from .config import ArrayConfig, ConfigError

__all__ = ["ArrayConfig", "ConfigError"]
