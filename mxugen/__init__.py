"""mxugen: int8 systolic matrix units in Amaranth, quantized networks, bit-exact verification."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mxugen")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
