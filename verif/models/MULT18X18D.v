// A simulation model of the Lattice ECP5 MULT18X18D: the part of it mxugen's "ecp5" target
// instantiates (hw/multiplier.py), for simulators without Lattice's library. An 18x18-bit
// multiply, each operand signed when its SIGNED input is high; the input, pipeline and output
// registers each absent ("NONE") or clocked by CLK0 with enable CE0 and synchronous reset RST0.
// The cascade, C and shift ports are not modelled; a setting this model does not cover stops
// the simulation instead of being simulated wrong. It is lint-clean under verilator -Wall.
module MULT18X18D #(
    parameter REG_INPUTA_CLK = "NONE", REG_INPUTA_CE = "CE0", REG_INPUTA_RST = "RST0",
    parameter REG_INPUTB_CLK = "NONE", REG_INPUTB_CE = "CE0", REG_INPUTB_RST = "RST0",
    parameter REG_PIPELINE_CLK = "NONE", REG_PIPELINE_CE = "CE0", REG_PIPELINE_RST = "RST0",
    parameter REG_OUTPUT_CLK = "NONE", REG_OUTPUT_CE = "CE0", REG_OUTPUT_RST = "RST0",
    /* verilator lint_off UNUSEDPARAM */  // the global set/reset, never pulsed in simulation
    parameter GSR = "ENABLED",
    /* verilator lint_on UNUSEDPARAM */
    parameter RESETMODE = "SYNC"
) (
    input A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17,
    input B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17,
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB, CLK0, CE0, RST0,
    output P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17,
    output P18, P19, P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33, P34, P35
);
    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9,
                     A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9,
                     B8, B7, B6, B5, B4, B3, B2, B1, B0};

    initial begin
        if ((REG_INPUTA_CLK != "NONE" && REG_INPUTA_CLK != "CLK0") ||
            (REG_INPUTB_CLK != "NONE" && REG_INPUTB_CLK != "CLK0") ||
            (REG_PIPELINE_CLK != "NONE" && REG_PIPELINE_CLK != "CLK0") ||
            (REG_OUTPUT_CLK != "NONE" && REG_OUTPUT_CLK != "CLK0") ||
            REG_INPUTA_CE != "CE0" || REG_INPUTB_CE != "CE0" || REG_PIPELINE_CE != "CE0" ||
            REG_OUTPUT_CE != "CE0" || REG_INPUTA_RST != "RST0" || REG_INPUTB_RST != "RST0" ||
            REG_PIPELINE_RST != "RST0" || REG_OUTPUT_RST != "RST0" || RESETMODE != "SYNC")
            $fatal(1, "MULT18X18D model: only registers on CLK0/CE0/RST0, RESETMODE SYNC");
    end
    // The operands come from A and B: the shift-register inputs are not modelled.
    always @(posedge CLK0)
        if (SOURCEA | SOURCEB) $fatal(1, "MULT18X18D model: SOURCEA/SOURCEB must be 0");

    // Input registers (the SIGNED flags are registered with their operand).
    reg [17:0] a_q, b_q;
    reg sa_q, sb_q;
    always @(posedge CLK0)
        if (RST0) begin a_q <= 0; sa_q <= 0; b_q <= 0; sb_q <= 0; end
        else if (CE0) begin a_q <= a; sa_q <= SIGNEDA; b_q <= b; sb_q <= SIGNEDB; end
    wire [17:0] a_in = REG_INPUTA_CLK == "NONE" ? a : a_q;
    wire [17:0] b_in = REG_INPUTB_CLK == "NONE" ? b : b_q;
    wire sa = REG_INPUTA_CLK == "NONE" ? SIGNEDA : sa_q;
    wire sb = REG_INPUTB_CLK == "NONE" ? SIGNEDB : sb_q;

    // The product of the operands, each extended by its own signedness.
    wire signed [18:0] a_ext = {sa & a_in[17], a_in};
    wire signed [18:0] b_ext = {sb & b_in[17], b_in};
    wire signed [37:0] full = a_ext * b_ext;
    wire [35:0] product = full[35:0];
    wire [1:0] unused_full = full[37:36];  // an 18x18 product fits 36 bits

    reg [35:0] pipe_q, out_q;
    always @(posedge CLK0)
        if (RST0) pipe_q <= 0; else if (CE0) pipe_q <= product;
    wire [35:0] piped = REG_PIPELINE_CLK == "NONE" ? product : pipe_q;
    always @(posedge CLK0)
        if (RST0) out_q <= 0; else if (CE0) out_q <= piped;
    wire [35:0] p = REG_OUTPUT_CLK == "NONE" ? piped : out_q;
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18,
            P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p;
endmodule
