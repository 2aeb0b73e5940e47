"""One module per ``mxugen`` subcommand: each declares its options (``register``), lists its
``EXAMPLES`` and runs (parse, call the library, report)."""

from . import bench, clean, compile, demo, fpga, generate, mutate, quantize, sim

#: In the order ``mxugen --help`` lists them.
COMMANDS = (generate, quantize, compile, sim, bench, fpga, mutate, demo, clean)
