// Module scope stack and the scope-aware error text.
#include "tensor/scope.h"

#include "tensor/error.h"

namespace gs {

namespace {
thread_local std::string g_scope_path;
}

const std::string& current_scope_path() { return g_scope_path; }

ScopeGuard::ScopeGuard(const std::string& name) : previous_length_(g_scope_path.size()) {
  if (!g_scope_path.empty()) g_scope_path += '.';
  g_scope_path += name;
}

ScopeGuard::~ScopeGuard() { g_scope_path.resize(previous_length_); }

ScopeOverride::ScopeOverride(const std::string& path) : previous_(g_scope_path) { g_scope_path = path; }
ScopeOverride::~ScopeOverride() { g_scope_path = previous_; }

std::string error_with_scope(const std::string& message) {
  // Messages read "op (module.path): what is wrong"; insert the path after the op name.
  if (g_scope_path.empty()) return message;
  auto colon = message.find(':');
  auto space = message.find(' ');
  if (colon != std::string::npos && (space == std::string::npos || colon < space)) {
    return message.substr(0, colon) + " (" + g_scope_path + ")" + message.substr(colon);
  }
  return "(" + g_scope_path + ") " + message;
}

}  // namespace gs
