// The module scope stack: layers push their path ("features.3") while they run so that the
// tape and error messages can say which module an op came from. Thread-local, explicit state.
#pragma once
#include <string>

namespace gs {

// The current path, e.g. "features.3" (empty outside any module).
const std::string& current_scope_path();

// Pushes one path component for its lifetime: ScopeGuard g("3") inside "features" gives "features.3".
class ScopeGuard {
 public:
  explicit ScopeGuard(const std::string& name);
  ~ScopeGuard();
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;

 private:
  size_t previous_length_;
};

// Replaces the whole path for its lifetime (the backward pass runs each entry under the path
// it was recorded with, whatever scope backward() itself was called from).
class ScopeOverride {
 public:
  explicit ScopeOverride(const std::string& path);
  ~ScopeOverride();
  ScopeOverride(const ScopeOverride&) = delete;
  ScopeOverride& operator=(const ScopeOverride&) = delete;

 private:
  std::string previous_;
};

}  // namespace gs
