"""cocotb test modules and the drivers, monitors and scoreboards they share.

These modules run inside the simulator (imported by cocotb), not under pytest; pytest reaches
them through :class:`verif.runner.Simulator`.
"""
