// mxugen's raw simulation harness: the accelerator's Verilated model driven from C++ alone,
// no cocotb and no VPI, the fastest this simulator can go (verif/harness.py builds and runs it;
// `mxugen bench sim` compares the cocotb flow with it).
//
// usage: harness COMMANDS RESULTS. COMMANDS has one command a line, words in hex:
//   write SEL BASE WORD...   load words into memory SEL from BASE through the host port
//   run START_PC TIMEOUT     pulse start, wait for done; prints "ran CYCLES STALLS VECTORS ERROR"
//   read BASE COUNT          read activation words, each MXUGEN_READ_LATENCY cycles after its
//                            address (hw.block_ram.READ_LATENCY, a compile definition);
//                            prints "read WORD..."
// RESULTS gets one line per run and read, in order.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "Vaccel.h"
#include "verilated.h"

namespace {

// Port <- little-endian 32-bit chunks, whatever type Verilator gave the port.
template <typename T>
void assign(T& port, const std::vector<uint32_t>& chunks) {
    if constexpr (std::is_integral_v<T>) {
        uint64_t value = chunks.empty() ? 0 : chunks[0];
        if (sizeof(T) > 4 && chunks.size() > 1) value |= uint64_t(chunks[1]) << 32;
        port = T(value);
    } else {
        for (size_t i = 0; i < sizeof(port) / 4; ++i) port[i] = i < chunks.size() ? chunks[i] : 0;
    }
}

template <typename T>
std::string hex(const T& port) {
    std::ostringstream out;
    out << std::hex << std::setfill('0');
    if constexpr (std::is_integral_v<T>) {
        out << uint64_t(port);
    } else {
        for (size_t i = sizeof(port) / 4; i-- > 0;) out << std::setw(8) << port[i];
    }
    return out.str();
}

std::vector<uint32_t> chunks_of(const std::string& text) {
    std::vector<uint32_t> chunks((text.size() + 7) / 8, 0);
    size_t bit = 0;
    for (size_t i = text.size(); i-- > 0; bit += 4) {
        char c = text[i];
        uint32_t digit = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
        chunks[bit / 32] |= digit << (bit % 32);
    }
    return chunks;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " COMMANDS RESULTS\n";
        return 2;
    }
    std::ifstream commands(argv[1]);
    std::ofstream results(argv[2]);
    if (!commands || !results) {
        std::cerr << argv[0] << ": cannot open " << argv[1] << " or " << argv[2] << "\n";
        return 2;
    }
    VerilatedContext context;
    Vaccel top(&context);
    auto tick = [&] {
        top.clk = 0;
        top.eval();
        top.clk = 1;
        top.eval();
    };
    top.host_we = 0;
    top.start = 0;
    top.rst = 1;
    tick();
    tick();
    top.rst = 0;

    std::string line;
    while (std::getline(commands, line)) {
        std::istringstream words(line);
        std::string verb;
        words >> verb;
        if (verb == "write") {
            unsigned sel, base;
            words >> sel >> base;
            top.host_sel = sel;
            std::string word;
            for (unsigned address = base; words >> word; ++address) {
                top.host_addr = address;
                assign(top.host_wdata, chunks_of(word));
                top.host_we = 1;
                tick();
            }
            top.host_we = 0;
        } else if (verb == "run") {
            unsigned start_pc;
            uint64_t timeout;
            words >> start_pc >> timeout;
            top.start_pc = start_pc;
            top.start = 1;
            tick();
            top.start = 0;
            tick();
            uint64_t waited = 0;
            while (!top.done && waited++ < timeout) tick();
            if (!top.done) {
                std::cerr << argv[0] << ": no done after " << timeout << " cycles\n";
                return 1;
            }
            tick();
            results << "ran " << std::dec << uint64_t(top.cycles) << " "
                    << uint64_t(top.weight_stall_cycles) << " " << uint64_t(top.vectors) << " "
                    << unsigned(top.error) << "\n";
        } else if (verb == "read") {
            unsigned base, count;
            words >> base >> count;
            results << "read";
            for (unsigned i = 0; i < count; ++i) {
                top.host_raddr = base + i;
                for (int cycle = 0; cycle < MXUGEN_READ_LATENCY; ++cycle) tick();
                results << " " << hex(top.host_rdata);
            }
            results << "\n";
        } else if (!verb.empty()) {
            std::cerr << argv[0] << ": unknown command " << verb << "\n";
            return 2;
        }
    }
    top.final();
    return 0;
}
