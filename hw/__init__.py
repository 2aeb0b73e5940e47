"""mxugen hardware generator: weight-stationary int8 systolic matrix units in Amaranth.

``hw.contract`` (the formats the compiler and the hardware share) imports no Amaranth, so this
package imports its Amaranth parts only when they are asked for.
"""

__all__ = ["ArrayConfig", "ConfigError"]


def __getattr__(name: str):
    if name in __all__:
        from . import config
        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
