// `gradscope cuda`: whether this build has the CUDA backend, the devices it sees (or why it sees
// none) and the caching allocator's counters. Exit status 0 either way: it reports, it does not test.
#include <iostream>

#include "cli/commands.h"
#include "kernels/registry.h"
#include "tensor/cuda.h"

namespace gs::cli {
namespace {

void add_cuda(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("cuda", "show the CUDA backend: build, devices, allocator counters");
  register_action(cmd, [] {
    std::cout << "CUDA backend: "
              << (!cuda::is_built()     ? "not built"
                  : cuda::is_emulated() ? "built for the CUDA emulator (GS_CUDA=EMULATE: kernels run on the CPU)"
                                        : "built (sm_80, sm_90)")
              << "\n";
    const int n = cuda::device_count();
    if (n == 0) {
      std::cout << "devices: none (" << cuda::unavailable_reason() << ")\n";
    } else {
      std::cout << "devices: " << n << "\n";
      for (int d = 0; d < n; ++d) {
        cuda::MemoryStats s = cuda::memory_stats(d);
        std::cout << "  cuda:" << d << "  in use " << s.bytes_in_use << " B, peak " << s.peak_bytes_in_use
                  << " B, cached " << s.bytes_cached << " B\n";
      }
    }
    int ops = 0;
    for (const auto& [op, variants] : kernels::list_variants()) ops += op.rfind("cuda.", 0) == 0;
    std::cout << "CUDA kernel tables: " << ops << " (list them with `gradscope kernels`)\n";
  });
}

}  // namespace

const CommandRegistration register_cuda{95, add_cuda};

}  // namespace gs::cli
