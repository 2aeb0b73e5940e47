"""The accelerator behind an AXI4-Lite slave: control and status registers and host access to
the memories, so it attaches to a Zynq, a MicroBlaze or a LiteX SoC as it is.

Register map (32-bit registers, byte addresses; docs/verilog.md has the programming sequence):

========  ==========  ======================================================================
offset    access      register
========  ==========  ======================================================================
0x000     W           ``CONTROL``: writing bit 0 starts the program at ``START_PC``
0x004     R           ``STATUS``: bit 0 busy, bit 1 done, bit 2 error
0x008     RW          ``START_PC``: the first descriptor of the next run
0x00C     R           ``CYCLES``: cycles of the last run
0x010     R           ``WEIGHT_STALLS``: cycles an activation vector waited for its weights
0x014     R           ``VECTORS``: activation vectors the array and the vector unit took
0x018     R           ``ID``: ``0x4D584D55`` ("MXMU")
0x01C     R           ``SHAPE``: rows (bits 0–7), cols (8–15), ``WDATA`` registers (16–23),
                      ``RDATA`` registers (24–31)
0x020     RW          ``MEM_SELECT``: the memory words go to (0 weights, 1 activations,
                      2 parameters, 3 program; :mod:`hw.contract`)
0x024     RW          ``MEM_ADDR``: the word the next one goes to; counts up by one a word
0x028     W           ``ACT_READ``: latch activation word ``value`` into ``RDATA``
0x100 +   W           ``WDATA[i]``: bits ``32i …`` of the next word; writing the last one
4i                    writes the word into ``MEM_SELECT`` at ``MEM_ADDR``
0x200 +   R           ``RDATA[i]``: bits ``32i …`` of the latched activation word
4i
========  ==========  ======================================================================

Every response is OKAY except SLVERR for an address outside the map, a write whose strobes
are not all set, and a memory word or start written while the accelerator runs (the
accelerator ignores those: a running program's memories do not change under it).

One transaction at a time on each channel: an address and its data are taken when both have
arrived, the response follows three cycles later (the activation memory's read latency and a
cycle to latch its word, so an ``RDATA`` read after an ``ACT_READ``'s response sees the word);
a read's data the cycle after its address.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib.wiring import In, Out, Signature

from .accelerator import Accelerator, host_word_width
from .block_ram import READ_LATENCY
from .component import ConfiguredComponent
from .config import ArrayConfig
from .pipeline import valid_delayed

__all__ = ["AXI_LITE_ADDRESS_BITS", "AxiLiteAccelerator", "REGISTERS", "axi_lite_signature"]

#: Byte address width of the slave: the register map spans 4 KiB.
AXI_LITE_ADDRESS_BITS = 12
#: Register name → byte offset (``WDATA`` and ``RDATA`` are the first of their arrays).
REGISTERS = {"CONTROL": 0x000, "STATUS": 0x004, "START_PC": 0x008, "CYCLES": 0x00C,
             "WEIGHT_STALLS": 0x010, "VECTORS": 0x014, "ID": 0x018, "SHAPE": 0x01C,
             "MEM_SELECT": 0x020, "MEM_ADDR": 0x024, "ACT_READ": 0x028,
             "WDATA": 0x100, "RDATA": 0x200}
ID_VALUE = 0x4D584D55
OKAY, SLVERR = 0b00, 0b10


def axi_lite_signature(address_bits: int = AXI_LITE_ADDRESS_BITS) -> Signature:
    """An AXI4-Lite bus with 32-bit data, as its master drives it (a slave takes it flipped)."""
    return Signature({
        "awaddr": Out(address_bits), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(32), "wstrb": Out(4), "wvalid": Out(1), "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        "araddr": Out(address_bits), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
        "rdata": In(32), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
    })


def _chunks(bits: int) -> int:
    return -(-bits // 32)


class AxiLiteAccelerator(ConfiguredComponent):
    """:class:`~hw.accelerator.Accelerator` with an AXI4-Lite slave instead of its host port.

    Parameters
    ----------
    config : :class:`~hw.config.ArrayConfig`
    images : memory images baked in, as for :class:`~hw.accelerator.Accelerator`.

    Attributes
    ----------
    s_axil : ``In(axi_lite_signature())``
        The slave port (Verilog ports ``s_axil__awaddr`` …).
    done, error : ``Out(1)``
        The run finished, or flagged an invalid program (``STATUS`` bits 1 and 2), for an
        interrupt line.
    """

    def __init__(self, config: ArrayConfig, images: dict[str, list[int]] | None = None):
        self._images = images
        super().__init__(config, {"s_axil": In(axi_lite_signature()),
                                  "done": Out(1), "error": Out(1)})

    @property
    def wdata_registers(self) -> int:
        """32-bit ``WDATA`` registers: the widest memory word, in 32-bit pieces."""
        return _chunks(host_word_width(self.config))

    @property
    def rdata_registers(self) -> int:
        """32-bit ``RDATA`` registers: one activation word."""
        return _chunks(8 * self.config.rows)

    def elaborate(self, platform):
        m = Module()
        cfg, bus = self.config, self.s_axil
        m.submodules.accel = accel = Accelerator(cfg, self._images)
        wchunks, rchunks = self.wdata_registers, self.rdata_registers
        m.d.comb += [self.done.eq(accel.done), self.error.eq(accel.error)]

        start_pc, select = Signal.like(accel.start_pc), Signal.like(accel.host_sel)
        mem_addr = Signal.like(accel.host_addr)
        staged = [Signal(32, name=f"wdata{i}") for i in range(wchunks - 1)]
        latched = Signal(8 * cfg.rows)

        # --- writes: take the address and the data, then act and respond ------------------
        aw_full, aw_addr = Signal(), Signal.like(bus.awaddr)
        w_full, w_data, w_strb = Signal(), Signal.like(bus.wdata), Signal.like(bus.wstrb)
        responding, refused_then = Signal(), Signal()  # a write acted on, its response due
        m.d.comb += [bus.awready.eq(~aw_full & ~bus.bvalid & ~responding),
                     bus.wready.eq(~w_full & ~bus.bvalid & ~responding)]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [aw_full.eq(1), aw_addr.eq(bus.awaddr)]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_full.eq(1), w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)

        execute = aw_full & w_full
        register = aw_addr[2:]  # word index

        def at(name: str, index: int = 0):
            return register == (REGISTERS[name] >> 2) + index

        wdata_index = register - (REGISTERS["WDATA"] >> 2)
        is_wdata = (aw_addr >= REGISTERS["WDATA"]) & \
            (aw_addr < REGISTERS["WDATA"] + 4 * wchunks) & (aw_addr[:2] == 0)
        commit = is_wdata & (wdata_index == wchunks - 1)
        needs_idle = at("CONTROL") | commit
        known = at("CONTROL") | at("START_PC") | at("MEM_SELECT") | at("MEM_ADDR") | \
            at("ACT_READ") | is_wdata
        refused = (aw_addr[:2] != 0) | ~known | (w_strb != 0b1111) | (needs_idle & accel.busy)
        act = execute & ~refused

        m.d.comb += [
            accel.start.eq(act & at("CONTROL") & w_data[0]),
            accel.start_pc.eq(start_pc),
            accel.host_sel.eq(select),
            accel.host_addr.eq(mem_addr),
            accel.host_wdata.eq(Cat(*staged, w_data)),
            accel.host_we.eq(act & commit),
            # An ACT_READ presents its address now: the word is there READ_LATENCY cycles on.
            accel.host_raddr.eq(w_data),
        ]
        # A write is answered once what it did shows: READ_LATENCY cycles on, the ACT_READ's
        # word is latched, and the response follows, so a read after it sees the word.
        with m.If(execute):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), responding.eq(1),
                         refused_then.eq(refused)]
        with m.If(valid_delayed(m, execute, READ_LATENCY, name="answer")):
            m.d.sync += [responding.eq(0), bus.bvalid.eq(1),
                         bus.bresp.eq(Mux(refused_then, SLVERR, OKAY))]
        with m.If(valid_delayed(m, act & at("ACT_READ"), READ_LATENCY, name="capture")):
            m.d.sync += latched.eq(accel.host_rdata)
        with m.If(act):
            with m.If(at("START_PC")):
                m.d.sync += start_pc.eq(w_data)
            with m.If(at("MEM_SELECT")):
                m.d.sync += select.eq(w_data)
            with m.If(at("MEM_ADDR")):
                m.d.sync += mem_addr.eq(w_data)
            with m.If(commit):
                m.d.sync += mem_addr.eq(mem_addr + 1)
            for i, reg in enumerate(staged):
                with m.If(is_wdata & (wdata_index == i)):
                    m.d.sync += reg.eq(w_data)

        # --- reads: the register's value the cycle after its address ----------------------
        m.d.comb += bus.arready.eq(~bus.rvalid)
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        read_index = bus.araddr[2:]
        status = Cat(accel.busy, accel.done, accel.error)
        shape = Cat(Const(cfg.rows, 8), Const(cfg.cols, 8), Const(wchunks, 8), Const(rchunks, 8))
        values = {"STATUS": status, "START_PC": start_pc, "CYCLES": accel.cycles,
                  "WEIGHT_STALLS": accel.weight_stall_cycles, "VECTORS": accel.vectors,
                  "ID": Const(ID_VALUE, 32), "SHAPE": shape, "MEM_SELECT": select,
                  "MEM_ADDR": mem_addr}
        pieces = [latched[32 * i:32 * (i + 1)] for i in range(rchunks)]
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [bus.rvalid.eq(1), bus.rdata.eq(0), bus.rresp.eq(SLVERR)]
            with m.If(bus.araddr[:2] == 0):
                with m.Switch(read_index):
                    for name, value in values.items():
                        with m.Case(REGISTERS[name] >> 2):
                            m.d.sync += [bus.rdata.eq(value), bus.rresp.eq(OKAY)]
                    for i, piece in enumerate(pieces):
                        with m.Case((REGISTERS["RDATA"] >> 2) + i):
                            m.d.sync += [bus.rdata.eq(piece), bus.rresp.eq(OKAY)]
        return m
