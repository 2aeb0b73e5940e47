"""One module per ``mxugen`` subcommand: each declares its options (``register``), lists its
``EXAMPLES`` and runs (parse, call the library, report)."""

from . import bench, clean, compile, demo, explore, fpga, generate, mutate, quantize, sim

#: In the order ``mxugen --help`` lists them.
COMMANDS = (generate, quantize, compile, sim, bench, fpga, explore, mutate, demo, clean)
