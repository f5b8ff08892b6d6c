// safetensors read/write: header JSON through nlohmann::ordered_json (insertion order is file order),
// data raw little-endian. Validation mirrors the reference implementation and names the file.
#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "tensor/raw_ops.h"

namespace gs::io {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; add byte swapping");

namespace {

using ordered_json = nlohmann::ordered_json;
constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit

const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
    case DType::I64:
      return "I64";
  }
  return "?";
}

// Element size of every dtype the format knows (0: unknown name).
size_t foreign_dtype_size(const std::string& name) {
  static const std::map<std::string, size_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8}};
  auto it = sizes.find(name);
  return it == sizes.end() ? 0 : it->second;
}

float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000 | (mantissa << 13);  // inf / nan
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;  // +-0
  } else {        // subnormal: normalise
    int shift = 0;
    while (!(mantissa & 0x400)) {
      mantissa <<= 1;
      ++shift;
    }
    bits = sign | ((113 - shift) << 23) | ((mantissa & 0x3ff) << 13);
  }
  return std::bit_cast<float>(bits);
}

// Converts `count` elements of a foreign dtype at `src` into i64 or f32 at `dst`.
void convert_foreign(const std::string& dtype, const char* src, int64_t count, Tensor& dst) {
  auto load_int = [&](auto tag) {
    using T = decltype(tag);
    int64_t* out = dst.data<int64_t>();
    for (int64_t i = 0; i < count; ++i) {
      T v;
      std::memcpy(&v, src + i * sizeof(T), sizeof(T));
      out[i] = static_cast<int64_t>(v);
    }
  };
  if (dtype == "BOOL" || dtype == "U8") return load_int(uint8_t{});
  if (dtype == "I8") return load_int(int8_t{});
  if (dtype == "I16") return load_int(int16_t{});
  if (dtype == "U16") return load_int(uint16_t{});
  if (dtype == "I32") return load_int(int32_t{});
  if (dtype == "U32") return load_int(uint32_t{});
  if (dtype == "U64") return load_int(uint64_t{});
  float* out = dst.data<float>();
  for (int64_t i = 0; i < count; ++i) {
    uint16_t h;
    std::memcpy(&h, src + i * 2, 2);
    out[i] = dtype == "F16" ? half_to_float(h) : std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
  }
}

struct HeaderEntry {
  std::string name;
  std::string dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

}  // namespace

std::string safetensors_header(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json meta = ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    uint64_t nbytes = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    ordered_json entry = ordered_json::object();
    entry["dtype"] = safetensors_dtype(t.dtype());
    entry["shape"] = t.shape();
    entry["data_offsets"] = {offset, offset + nbytes};
    header[name] = entry;
    offset += nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned, as the reference pads
  return text;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Check everything before the temp file exists, so a bad call never touches the disk.
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    GS_CHECK(!name.empty(), "save_safetensors: %s: a tensor has an empty name", path.c_str());
    GS_CHECK(name != "__metadata__", "save_safetensors: %s: '__metadata__' is reserved, not a tensor name",
             path.c_str());
    GS_CHECK(names.insert(name).second, "save_safetensors: %s: tensor name '%s' appears twice", path.c_str(),
             name.c_str());
    GS_CHECK(t.defined(), "save_safetensors: %s: tensor '%s' is undefined", path.c_str(), name.c_str());
    GS_CHECK(t.device().is_cpu(), "save_safetensors: %s: tensor '%s' is on %s; copy it to the cpu first", path.c_str(),
             name.c_str(), t.device().str().c_str());
  }
  std::string header = safetensors_header(tensors, metadata);
  uint64_t header_len = header.size();
  char len_bytes[8];
  std::memcpy(len_bytes, &header_len, 8);

  AtomicFile file(path);
  file.write(len_bytes, 8);
  file.write(header);
  for (const auto& [name, t] : tensors) {
    if (t.numel() == 0) continue;
    Tensor c = raw::contiguous(t.to(Device::cpu()));  // tensors on a GPU are written from a host copy
    file.write(c.raw_data(), static_cast<size_t>(c.numel()) * dtype_size(c.dtype()));
  }
  file.commit();
}

const Tensor& SafetensorsFile::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  throw Error(error_with_scope(
      format("safetensors: no tensor named '%s' (the file has %zu tensors)", name.c_str(), tensors.size())));
}

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == name; });
}

SafetensorsFile load_safetensors(const std::string& path, SafetensorsLoadOptions options) {
  const char* file = path.c_str();
  std::string bytes = read_file(path);
  GS_CHECK(bytes.size() >= 8, "load_safetensors: %s is truncated: %zu bytes, too short for the 8-byte header length",
           file, bytes.size());
  uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  GS_CHECK(header_len <= kMaxHeaderBytes,
           "load_safetensors: %s: header length %llu is over the 100 MB limit: "
           "not a safetensors file or a corrupt one",
           file, (unsigned long long)header_len);
  GS_CHECK(header_len <= bytes.size() - 8,
           "load_safetensors: %s is truncated: header length %llu runs past the end "
           "of the file (%zu bytes)",
           file, (unsigned long long)header_len, bytes.size());
  const char* data = bytes.data() + 8 + header_len;
  const uint64_t data_size = bytes.size() - 8 - header_len;

  // As the reference reader: the header is a JSON object from its first byte (no BOM, no blanks
  // before it), and a tensor name appears once (the JSON parser would keep the last silently).
  ordered_json header;
  std::set<std::string> names;
  std::string duplicate;
  auto once = [&](int depth, nlohmann::json::parse_event_t event, ordered_json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key && !names.insert(parsed.get<std::string>()).second &&
        duplicate.empty()) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  try {
    header = ordered_json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_len), once);
  } catch (const nlohmann::json::exception& e) {
    GS_CHECK(false, "load_safetensors: %s: bad header JSON (%s)", file, e.what());
  }
  GS_CHECK(duplicate.empty(), "load_safetensors: %s: bad header: '%s' appears twice", file, duplicate.c_str());
  GS_CHECK(header.is_object(), "load_safetensors: %s: bad header JSON: expected an object, got %s", file,
           header.type_name());
  GS_CHECK(header_len > 0 && bytes[8] == '{', "load_safetensors: %s: bad header JSON: it must start with '{'", file);

  SafetensorsFile out;
  std::vector<HeaderEntry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      GS_CHECK(value.is_object(), "load_safetensors: %s: bad header: __metadata__ must be an object of strings", file);
      for (const auto& [key, v] : value.items()) {
        GS_CHECK(v.is_string(), "load_safetensors: %s: bad header: __metadata__['%s'] is not a string", file,
                 key.c_str());
        out.metadata[key] = v.get<std::string>();
      }
      continue;
    }
    const char* n = name.c_str();
    GS_CHECK(value.is_object() && value.contains("dtype") && value.contains("shape") && value.contains("data_offsets"),
             "load_safetensors: %s: bad header: tensor '%s' needs dtype, shape and data_offsets", file, n);
    HeaderEntry e;
    e.name = name;
    GS_CHECK(value["dtype"].is_string(), "load_safetensors: %s: bad header: tensor '%s' dtype is not a string", file,
             n);
    e.dtype = value["dtype"].get<std::string>();
    GS_CHECK(value["shape"].is_array(), "load_safetensors: %s: bad header: tensor '%s' shape is not a list", file, n);
    uint64_t numel = 1;
    for (const auto& d : value["shape"]) {
      GS_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
               "load_safetensors: %s: bad header: tensor '%s' shape holds %s, not a non-negative integer", file, n,
               d.dump().c_str());
      uint64_t dim = d.get<uint64_t>();
      GS_CHECK(dim <= (uint64_t{1} << 48) && (dim == 0 || numel <= (uint64_t{1} << 48) / dim),
               "load_safetensors: %s: bad header: tensor '%s' shape %s is too large", file, n,
               value["shape"].dump().c_str());
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& offsets = value["data_offsets"];
    GS_CHECK(
        offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() && offsets[1].is_number_unsigned(),
        "load_safetensors: %s: bad header: tensor '%s' data_offsets %s is not [begin, end]", file, n,
        offsets.dump().c_str());
    e.begin = offsets[0].get<uint64_t>();
    e.end = offsets[1].get<uint64_t>();
    GS_CHECK(e.begin <= e.end, "load_safetensors: %s: tensor '%s' data_offsets [%llu,%llu] end before they begin", file,
             n, (unsigned long long)e.begin, (unsigned long long)e.end);
    GS_CHECK(e.end <= data_size,
             "load_safetensors: %s: tensor '%s' data_offsets [%llu,%llu] are out of range: the "
             "data section has %llu bytes (truncated file?)",
             file, n, (unsigned long long)e.begin, (unsigned long long)e.end, (unsigned long long)data_size);
    size_t elem = foreign_dtype_size(e.dtype);
    GS_CHECK(elem != 0, "load_safetensors: %s: tensor '%s' has unknown dtype '%s'", file, n, e.dtype.c_str());
    GS_CHECK(e.end - e.begin == numel * elem,
             "load_safetensors: %s: tensor '%s' shape %s of %s needs %llu bytes but "
             "data_offsets [%llu,%llu] hold %llu",
             file, n, shape_str(e.shape).c_str(), e.dtype.c_str(), (unsigned long long)(numel * elem),
             (unsigned long long)e.begin, (unsigned long long)e.end, (unsigned long long)(e.end - e.begin));
    bool native = e.dtype == "F32" || e.dtype == "F64" || e.dtype == "I64";
    bool convertible = !native && e.dtype.rfind("F8", 0) != 0;
    GS_CHECK(native || (options.convert_dtypes && convertible),
             "load_safetensors: %s: tensor '%s' has dtype %s; gradscope holds F32, F64 and I64%s", file, n,
             e.dtype.c_str(), convertible ? " (load with convert_dtypes to widen it)" : "");
    entries.push_back(std::move(e));
  }

  // Byte ranges may not overlap (empty tensors occupy nothing).
  std::vector<const HeaderEntry*> by_offset;
  for (const auto& e : entries)
    if (e.end > e.begin) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const HeaderEntry& a = *by_offset[i - 1];
    const HeaderEntry& b = *by_offset[i];
    GS_CHECK(b.begin >= a.end,
             "load_safetensors: %s: tensors '%s' [%llu,%llu] and '%s' [%llu,%llu] have "
             "overlapping data_offsets",
             file, a.name.c_str(), (unsigned long long)a.begin, (unsigned long long)a.end, b.name.c_str(),
             (unsigned long long)b.begin, (unsigned long long)b.end);
  }
  // The tensors fill the data buffer (the reference reader's MetadataIncompleteBuffer): bytes that
  // no tensor holds mean a file cut, padded or written by something else.
  uint64_t held = 0;
  for (const HeaderEntry* e : by_offset) held += e->end - e->begin;
  GS_CHECK(held == data_size,
           "load_safetensors: %s: the tensors hold %llu of the %llu data bytes after the header: not a valid "
           "safetensors file",
           file, (unsigned long long)held, (unsigned long long)data_size);

  for (const auto& e : entries) {
    const char* src = data + e.begin;
    int64_t numel = shape_numel(e.shape);
    Tensor t;
    if (e.dtype == "F32" || e.dtype == "F64" || e.dtype == "I64") {
      t = empty(e.shape, {e.dtype == "F32" ? DType::F32 : e.dtype == "F64" ? DType::F64 : DType::I64});
      if (numel > 0) std::memcpy(t.raw_data(), src, e.end - e.begin);
    } else {
      bool to_float = e.dtype == "F16" || e.dtype == "BF16";
      t = empty(e.shape, {to_float ? DType::F32 : DType::I64});
      convert_foreign(e.dtype, src, numel, t);
    }
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

}  // namespace gs::io
