// Element types and devices. f32 is the working type, f64 exists on the CPU for gradcheck,
// i64 holds class labels and indices (gather, index_select, cross_entropy targets).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "tensor/error.h"

namespace gs {

enum class DType : uint8_t { F32, F64, I64 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 8; }
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::I64: return "i64";
  }
  return "?";
}
inline bool is_floating(DType t) { return t != DType::I64; }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }

struct Device {
  enum class Kind : uint8_t { CPU, CUDA };
  Kind kind = Kind::CPU;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int i = 0) { return {Kind::CUDA, i}; }
  bool is_cpu() const { return kind == Kind::CPU; }
  bool is_cuda() const { return kind == Kind::CUDA; }
  bool operator==(const Device&) const = default;
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
  static Device parse(const std::string& text);  // "cpu", "cuda", "cuda:1"
};

}  // namespace gs

// GS_DISPATCH_FLOAT(dtype, "op", body): runs body with `scalar_t` = float or double.
#define GS_DISPATCH_FLOAT(DTYPE, OPNAME, ...)                                           \
  [&] {                                                                                 \
    switch (DTYPE) {                                                                    \
      case ::gs::DType::F32: { using scalar_t = float; return __VA_ARGS__(); }          \
      case ::gs::DType::F64: { using scalar_t = double; return __VA_ARGS__(); }         \
      default:                                                                          \
        throw ::gs::Error(::gs::error_with_scope(std::string(OPNAME) +                  \
                          ": dtype " + ::gs::dtype_name(DTYPE) + " is not supported (f32, f64 only)")); \
    }                                                                                   \
  }()

// GS_DISPATCH_ALL(dtype, "op", body): float, double or int64_t.
#define GS_DISPATCH_ALL(DTYPE, OPNAME, ...)                                             \
  [&] {                                                                                 \
    switch (DTYPE) {                                                                    \
      case ::gs::DType::F32: { using scalar_t = float; return __VA_ARGS__(); }          \
      case ::gs::DType::F64: { using scalar_t = double; return __VA_ARGS__(); }         \
      case ::gs::DType::I64: { using scalar_t = int64_t; return __VA_ARGS__(); }        \
    }                                                                                   \
    throw ::gs::Error(std::string(OPNAME) + ": unknown dtype");                         \
  }()
