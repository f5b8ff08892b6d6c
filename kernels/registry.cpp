// Kernel selection state and the list of registered variants.
#include "kernels/registry.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <set>
#include <stdexcept>

namespace gs::kernels {

namespace {
struct Registry {
  std::mutex mutex;
  std::map<std::string, std::string> selection;
  std::map<std::string, std::vector<std::string>> variants;
  bool env_read = false;
};
Registry& registry() {
  static Registry r;
  return r;
}
void read_env_locked(Registry& r);
std::string trimmed(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t"), last = s.find_last_not_of(" \t");
  return first == std::string::npos ? std::string() : s.substr(first, last - first + 1);
}
// "op=variant,op=variant"; blanks around the items, ops and variants are not part of them.
void parse_locked(Registry& r, const std::string& spec) {
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t comma = spec.find(',', pos);
    std::string item = trimmed(spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    pos = comma == std::string::npos ? spec.size() : comma + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    const std::string op = eq == std::string::npos ? "" : trimmed(item.substr(0, eq));
    const std::string variant = eq == std::string::npos ? "" : trimmed(item.substr(eq + 1));
    if (op.empty() || variant.empty()) {
      throw std::invalid_argument("kernel selection: '" + item + "' is not op=variant (e.g. matmul=ref)");
    }
    r.selection[op] = variant;
  }
}
void read_env_locked(Registry& r) {
  if (r.env_read) return;
  r.env_read = true;
  if (const char* env = std::getenv("GS_KERNELS")) parse_locked(r, env);
}
}  // namespace

void select_variant(const std::string& op, const std::string& variant) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  read_env_locked(r);
  if (variant.empty()) {
    r.selection.erase(op);
  } else {
    r.selection[op] = variant;
  }
}

std::string selected_variant(const std::string& op) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  read_env_locked(r);
  auto it = r.selection.find(op);
  return it == r.selection.end() ? std::string() : it->second;
}

void parse_selection(const std::string& spec) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  read_env_locked(r);
  parse_locked(r, spec);
}

void note_variant(const std::string& op, const std::string& variant) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto& v = r.variants[op];
  for (auto& name : v) {
    if (name == variant) return;
  }
  v.push_back(variant);
}

std::map<std::string, std::vector<std::string>> list_variants() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.variants;
}

void check_selection() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  read_env_locked(r);
  for (const auto& [op, variant] : r.selection) {
    auto it = r.variants.find(op);
    if (it == r.variants.end()) {
      std::string ops;
      for (const auto& [name, variants] : r.variants) ops += (ops.empty() ? "" : ", ") + name;
      throw std::invalid_argument("kernel selection: no kernel op '" + op + "' (selected '" + op + "=" + variant +
                                  "'; ops: " + ops + "); check GS_KERNELS or --kernel");
    }
    const auto& known = it->second;
    if (std::find(known.begin(), known.end(), variant) == known.end()) unknown_variant(op, variant, known);
  }
}

void unknown_variant(const std::string& op, const std::string& name, const std::vector<std::string>& known) {
  std::string list;
  for (auto& k : known) list += (list.empty() ? "" : ", ") + k;
  throw std::invalid_argument("kernel selection: op '" + op + "' has no variant '" + name + "' (known: " + list +
                              "); check GS_KERNELS or --kernel");
}

}  // namespace gs::kernels
