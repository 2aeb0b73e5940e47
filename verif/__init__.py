"""mxugen verification: cocotb testbenches on Verilator, checked against the golden model."""
