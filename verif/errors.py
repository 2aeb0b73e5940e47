"""The errors verification reports, importable without cocotb (the command line maps them to
exit codes before knowing whether it will simulate)."""


class ToolchainError(RuntimeError):
    """Something the simulator build needs is missing; the message names what to install."""


class SimulationError(RuntimeError):
    """The simulator could not be built or did not run; the message says where to look."""
