// gs::Error and GS_CHECK: every user-facing error names the op, the shapes and, where known,
// the module path (from the scope stack in scope.h). Library code throws; only cli/ exits.
#pragma once
#include <cstdio>
#include <stdexcept>
#include <string>

namespace gs {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Builds the text of an error: "<message>" prefixed by the active module path, if any.
std::string error_with_scope(const std::string& message);

template <class... Args>
std::string format(const char* fmt, Args... args) {
  if constexpr (sizeof...(Args) == 0) {
    return fmt;
  } else {
    int n = std::snprintf(nullptr, 0, fmt, args...);
    std::string out(static_cast<size_t>(n), '\0');
    std::snprintf(out.data(), out.size() + 1, fmt, args...);
    return out;
  }
}

}  // namespace gs

// GS_CHECK(cond, "fmt", args...): throws gs::Error with the formatted text (printf-style;
// pass std::string through .c_str()). The active module path is prepended.
#define GS_CHECK(cond, ...)                                              \
  do {                                                                   \
    if (!(cond)) throw ::gs::Error(::gs::error_with_scope(::gs::format(__VA_ARGS__))); \
  } while (0)
