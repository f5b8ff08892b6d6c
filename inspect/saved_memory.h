// Where the memory that forward keeps for backward sits: the tensors each tape entry saved (and,
// inside gs::checkpoint, the inputs the checkpoint keeps instead), each storage counted once and
// charged to the first entry that holds it, in tape order. A saved view keeps its whole storage,
// so a storage counts with all its bytes. Storages passed as `exclude` (a model's parameters and
// buffers, which exist whether or not anything is saved) are not counted.
//
//   std::vector<Tensor> weights;                       // parameters and buffers: not counted
//   for (auto& [name, t] : model->state_dict()) weights.push_back(t);
//   inspect::SavedMemory m = inspect::saved_memory(tape_entries(), weights);
//   for (auto& [module, bytes] : m.by_module) std::printf("%s %lld\n", module.c_str(), (long long)bytes);
//
// This is what `gradscope graph --memory` prints; `--recompute-segments` shows what checkpointing
// keeps instead.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tape.h"

namespace gs::inspect {

struct SavedMemory {
  struct PerEntry {
    int64_t seq = 0;
    int64_t bytes = 0;             // storages this entry is the first to hold
    int64_t tensors = 0;           // how many
    int64_t checkpoint_bytes = 0;  // of bytes: held as a checkpoint's inputs
  };
  std::vector<PerEntry> entries;  // one per entry given, in order
  // The first component of each entry's module path ("3" of "3.conv1"; "" outside any module),
  // in order of first appearance, with the bytes charged to its entries.
  std::vector<std::pair<std::string, int64_t>> by_module;
  int64_t total_bytes = 0, total_tensors = 0;
  int64_t checkpoint_bytes = 0;  // of total_bytes: checkpoint inputs
};

SavedMemory saved_memory(const std::vector<std::shared_ptr<Entry>>& entries, const std::vector<Tensor>& exclude = {});

// "512 B", "3.5 KiB", "1.25 MiB", "2.1 GiB".
std::string bytes_str(int64_t bytes);

}  // namespace gs::inspect
