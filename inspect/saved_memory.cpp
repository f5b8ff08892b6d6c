// Saved-for-backward memory by tape entry and top-level module (see saved_memory.h).
#include "inspect/saved_memory.h"

#include <algorithm>
#include <unordered_set>

#include "autograd/checkpoint.h"

namespace gs::inspect {

SavedMemory saved_memory(const std::vector<std::shared_ptr<Entry>>& entries, const std::vector<Tensor>& exclude) {
  std::unordered_set<const Storage*> seen;
  for (const Tensor& t : exclude) {
    if (t.defined()) seen.insert(t.storage().get());
  }
  std::unordered_set<const void*> checkpoints_seen;  // a checkpoint's inputs count at its first entry
  SavedMemory out;
  for (const auto& e : entries) {
    SavedMemory::PerEntry row;
    row.seq = e->seq;
    auto charge = [&](const Tensor& t, bool checkpoint_input) {
      if (!t.defined() || !seen.insert(t.storage().get()).second) return;
      const auto bytes = static_cast<int64_t>(t.storage()->nbytes);
      row.bytes += bytes;
      ++row.tensors;
      if (checkpoint_input) row.checkpoint_bytes += bytes;
    };
    for (const Tensor& t : e->saved) charge(t, false);
    if (e->recompute && checkpoints_seen.insert(e->recompute.get()).second) {
      for (const Tensor& t : checkpoint_inputs(*e)) charge(t, true);
    }
    const std::string module = e->scope.substr(0, e->scope.find('.'));
    auto it =
        std::find_if(out.by_module.begin(), out.by_module.end(), [&](const auto& m) { return m.first == module; });
    if (it == out.by_module.end()) {
      out.by_module.emplace_back(module, row.bytes);
    } else {
      it->second += row.bytes;
    }
    out.total_bytes += row.bytes;
    out.total_tensors += row.tensors;
    out.checkpoint_bytes += row.checkpoint_bytes;
    out.entries.push_back(row);
  }
  return out;
}

std::string bytes_str(int64_t bytes) {
  if (bytes < 1024) return format("%lld B", (long long)bytes);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) v /= 1024, ++u;
  return format("%.3g %s", v, units[u]);
}

}  // namespace gs::inspect
