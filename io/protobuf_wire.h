// The protobuf wire format, by hand: varints, tags, length-delimited and fixed-width fields.
// Enough to write TensorBoard's Event/Summary messages and the HParams plugin data without a
// protoc build step. Little-endian hosts only (x86-64, aarch64), as the fixed fields are memcpy'd.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace gs::io::pb {

inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}
// wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
inline void put_tag(std::string& out, int field, int wire_type) { put_varint(out, (uint64_t(field) << 3) | wire_type); }
inline void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}
inline void put_double(std::string& out, int field, double v) {
  put_tag(out, field, 1);
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}
inline void put_float(std::string& out, int field, float v) {
  put_tag(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}
inline void put_int(std::string& out, int field, int64_t v) {
  put_tag(out, field, 0);
  put_varint(out, uint64_t(v));
}

}  // namespace gs::io::pb
