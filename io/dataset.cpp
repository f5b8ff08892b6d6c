// Dataset loaders for IDX (MNIST, Fashion-MNIST) and CIFAR-10 binary files, the dataset spec parser,
// and stratified splits/subsets. Image folders (stb_image) are in image_folder.cpp.
#include "io/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <sstream>
#include <tuple>

#include "io/safetensors.h"
#include "tensor/random.h"
#include "tensor/raw_ops.h"

namespace gs::io {

namespace fs = std::filesystem;

// ---------------- helpers ----------------

Shape Dataset::image_shape() const {
  GS_CHECK(images.defined() && images.dim() == 4, "Dataset: images must be (N, C, H, W), got %s",
           images.defined() ? shape_str(images.shape()).c_str() : "undefined");
  return {images.size(1), images.size(2), images.size(3)};
}

std::vector<int64_t> Dataset::class_counts() const {
  std::vector<int64_t> counts(static_cast<size_t>(std::max<int64_t>(num_classes, 0)), 0);
  if (!labels.defined()) return counts;
  const int64_t* l = labels.data<int64_t>();
  for (int64_t i = 0; i < labels.numel(); ++i)
    if (l[i] >= 0 && l[i] < num_classes) ++counts[static_cast<size_t>(l[i])];
  return counts;
}

std::string read_maybe_gzip(const std::string& path) {
  std::string raw = read_file(path);
  if (raw.size() < 2 || static_cast<unsigned char>(raw[0]) != 0x1f || static_cast<unsigned char>(raw[1]) != 0x8b)
    return raw;
  z_stream zs{};
  GS_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, "read_maybe_gzip: %s: zlib init failed", path.c_str());
  zs.next_in = reinterpret_cast<Bytef*>(raw.data());
  zs.avail_in = static_cast<uInt>(raw.size());
  std::string out;
  // The gzip trailer's ISIZE (size mod 2^32 of the last member) is a good first guess for the buffer.
  uint32_t isize = 0;
  if (raw.size() >= 18) std::memcpy(&isize, raw.data() + raw.size() - 4, 4);
  out.resize(std::max<size_t>(static_cast<size_t>(isize) + 1, 1 << 16));
  size_t produced = 0;
  while (true) {
    if (produced == out.size()) out.resize(out.size() * 2);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - produced, 1u << 30));
    size_t before = zs.avail_out;
    int rc = inflate(&zs, Z_NO_FLUSH);
    produced += before - zs.avail_out;
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      inflateReset(&zs);  // concatenated gzip members
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_out > 0) {
      inflateEnd(&zs);
      GS_CHECK(false, "read_maybe_gzip: %s is truncated: the gzip stream ends early", path.c_str());
    }
    if (rc == Z_BUF_ERROR) continue;
    std::string msg = zs.msg ? zs.msg : "error " + std::to_string(rc);
    inflateEnd(&zs);
    GS_CHECK(false, "read_maybe_gzip: %s: corrupt gzip data (%s)", path.c_str(), msg.c_str());
  }
  inflateEnd(&zs);
  out.resize(produced);
  return out;
}

namespace {

uint32_t read_be32(const std::string& bytes, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

struct IdxArray {
  std::vector<int64_t> dims;
  std::string bytes;  // whole file; data from data_offset
  size_t data_offset = 0;
  const unsigned char* data() const { return reinterpret_cast<const unsigned char*>(bytes.data() + data_offset); }
};

// Parses an IDX file of unsigned bytes with `ndims` dimensions; `what` is "images" or "labels".
IdxArray read_idx(const std::string& path, size_t ndims, const char* what) {
  IdxArray a;
  a.bytes = read_maybe_gzip(path);
  const char* file = path.c_str();
  GS_CHECK(a.bytes.size() >= 4, "load_idx: %s is truncated: %zu bytes, no IDX magic number", file, a.bytes.size());
  uint32_t magic = read_be32(a.bytes, 0);
  uint32_t expected = 0x0800u | static_cast<uint32_t>(ndims);
  GS_CHECK((magic & 0xffff0000u) == 0, "load_idx: %s: bad magic 0x%08x, expected 0x%08x for IDX %s: not an IDX file",
           file, magic, expected, what);
  GS_CHECK(((magic >> 8) & 0xff) == 0x08,
           "load_idx: %s: IDX element type 0x%02x; only unsigned bytes (0x08) are "
           "supported for %s",
           file, (magic >> 8) & 0xff, what);
  GS_CHECK((magic & 0xff) == ndims, "load_idx: %s: bad magic 0x%08x: %u dimensions, IDX %s have %zu (expected 0x%08x)",
           file, magic, magic & 0xff, what, ndims, expected);
  a.data_offset = 4 + 4 * ndims;
  GS_CHECK(a.bytes.size() >= a.data_offset, "load_idx: %s is truncated inside the header (%zu bytes)", file,
           a.bytes.size());
  uint64_t count = 1;
  bool overflow = false;  // dims of 2^31 each wrapped the product to 0, which passed the size check
  for (size_t i = 0; i < ndims; ++i) {
    a.dims.push_back(read_be32(a.bytes, 4 + 4 * i));
    overflow = overflow || __builtin_mul_overflow(count, static_cast<uint64_t>(a.dims.back()), &count);
  }
  uint64_t have = a.bytes.size() - a.data_offset;
  GS_CHECK(!overflow, "load_idx: %s: dims %s hold more than 2^64 bytes: a corrupt header", file,
           shape_str(a.dims).c_str());
  GS_CHECK(have >= count, "load_idx: %s is truncated: dims %s need %llu data bytes, the file has %llu", file,
           shape_str(a.dims).c_str(), (unsigned long long)count, (unsigned long long)have);
  GS_CHECK(have == count, "load_idx: %s: %llu bytes after the data of dims %s: not a valid IDX file", file,
           (unsigned long long)(have - count), shape_str(a.dims).c_str());
  return a;
}

Tensor bytes_to_unit_float(const unsigned char* src, const Shape& shape) {
  Tensor t = empty(shape, {DType::F32});
  float* dst = t.data<float>();
  int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]) / 255.0f;
  return t;
}

std::vector<std::string> numbered_names(int64_t n) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < n; ++i) names.push_back(std::to_string(i));
  return names;
}

// The first existing file among dir/<name> for name in candidates.
std::string find_file(const std::string& dir, const std::vector<std::string>& candidates, const char* op) {
  for (const auto& name : candidates) {
    fs::path p = fs::path(dir) / name;
    if (fs::is_regular_file(p)) return p.string();
  }
  std::string tried;
  for (const auto& name : candidates) tried += (tried.empty() ? "" : ", ") + name;
  GS_CHECK(false, "%s: none of %s found in %s", op, tried.c_str(), dir.c_str());
  return {};
}

Dataset load_idx_dir(const std::string& dir, bool train, const char* op) {
  std::string prefix = train ? "train" : "t10k";
  auto candidates = [&](const std::string& kind, const std::string& idx) {
    std::vector<std::string> out;
    for (const char* sep : {"-", "."})
      for (const char* ext : {".gz", ""}) out.push_back(prefix + "-" + kind + sep + idx + "-ubyte" + ext);
    return out;
  };
  std::string images = find_file(dir, candidates("images", "idx3"), op);
  std::string labels = find_file(dir, candidates("labels", "idx1"), op);
  return load_idx(images, labels);
}

}  // namespace

// ---------------- IDX ----------------

Dataset load_idx(const std::string& images_path, const std::string& labels_path) {
  IdxArray images = read_idx(images_path, 3, "images");
  IdxArray labels = read_idx(labels_path, 1, "labels");
  GS_CHECK(images.dims[0] == labels.dims[0], "load_idx: count mismatch: %s holds %lld images but %s holds %lld labels",
           images_path.c_str(), (long long)images.dims[0], labels_path.c_str(), (long long)labels.dims[0]);
  Dataset d;
  int64_t n = images.dims[0];
  d.images = bytes_to_unit_float(images.data(), {n, 1, images.dims[1], images.dims[2]});
  d.labels = empty({n}, {DType::I64});
  int64_t* l = d.labels.data<int64_t>();
  int64_t max_label = -1;
  for (int64_t i = 0; i < n; ++i) {
    l[i] = labels.data()[i];
    max_label = std::max(max_label, l[i]);
  }
  d.num_classes = max_label + 1;
  d.class_names = numbered_names(d.num_classes);
  d.description = "idx (" + std::to_string(n) + " images, " + images_path + ")";
  return d;
}

Dataset load_mnist_format(const std::string& dir, bool train) {
  Dataset d = load_idx_dir(dir, train, "load_mnist_format");
  GS_CHECK(d.num_classes <= 10, "load_mnist_format: %s: labels go up to %lld; MNIST-format data has 10 classes",
           dir.c_str(), (long long)(d.num_classes - 1));
  d.num_classes = 10;
  d.class_names = numbered_names(10);
  d.description = std::string("mnist-format ") + (train ? "train" : "test") + " (" + std::to_string(d.size()) +
                  " images, " + dir + ")";
  return d;
}

Dataset load_fashion_mnist(const std::string& dir, bool train) {
  GS_CHECK(fs::is_directory(dir),
           "load_fashion_mnist: %s does not exist; install the Debian package "
           "dataset-fashion-mnist or pass the directory holding the IDX files",
           dir.c_str());
  Dataset d = load_idx_dir(dir, train, "load_fashion_mnist");
  GS_CHECK(d.num_classes <= 10, "load_fashion_mnist: %s: labels go up to %lld; Fashion-MNIST has 10 classes",
           dir.c_str(), (long long)(d.num_classes - 1));
  d.num_classes = 10;
  d.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  d.description = std::string("fashion-mnist ") + (train ? "train" : "test") + " (" + std::to_string(d.size()) +
                  " images, " + dir + ")";
  return d;
}

// ---------------- CIFAR-10 ----------------

Dataset load_cifar10(const std::string& dir_in, bool train) {
  std::string dir = dir_in;
  if (!fs::exists(fs::path(dir) / "test_batch.bin") && !fs::exists(fs::path(dir) / "data_batch_1.bin") &&
      fs::is_directory(fs::path(dir) / "cifar-10-batches-bin"))
    dir = (fs::path(dir) / "cifar-10-batches-bin").string();
  std::vector<std::string> files;
  if (train) {
    for (int i = 1; i <= 5; ++i) files.push_back("data_batch_" + std::to_string(i) + ".bin");
  } else {
    files.push_back("test_batch.bin");
  }
  constexpr size_t kRecord = 1 + 3 * 32 * 32;
  std::vector<std::string> contents;
  int64_t n = 0;
  for (const auto& name : files) {
    std::string path = (fs::path(dir) / name).string();
    GS_CHECK(fs::is_regular_file(path), "load_cifar10: %s not found (expected CIFAR-10 binary batches in %s)",
             path.c_str(), dir.c_str());
    contents.push_back(read_maybe_gzip(path));
    size_t size = contents.back().size();
    GS_CHECK(size > 0 && size % kRecord == 0,
             "load_cifar10: %s has %zu bytes, not a whole number of %zu-byte "
             "records (truncated?)",
             path.c_str(), size, kRecord);
    n += static_cast<int64_t>(size / kRecord);
  }
  Dataset d;
  d.images = empty({n, 3, 32, 32}, {DType::F32});
  d.labels = empty({n}, {DType::I64});
  float* img = d.images.data<float>();
  int64_t* lab = d.labels.data<int64_t>();
  int64_t at = 0;
  for (size_t f = 0; f < contents.size(); ++f) {
    const auto* p = reinterpret_cast<const unsigned char*>(contents[f].data());
    size_t records = contents[f].size() / kRecord;
    for (size_t r = 0; r < records; ++r, ++at) {
      const unsigned char* rec = p + r * kRecord;
      GS_CHECK(rec[0] < 10, "load_cifar10: %s: record %zu has label %d; CIFAR-10 labels are 0..9",
               (fs::path(dir) / files[f]).string().c_str(), r, int(rec[0]));
      lab[at] = rec[0];
      for (size_t k = 0; k < kRecord - 1; ++k) img[at * (kRecord - 1) + k] = static_cast<float>(rec[1 + k]) / 255.0f;
    }
  }
  d.num_classes = 10;
  d.class_names = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  fs::path meta = fs::path(dir) / "batches.meta.txt";
  if (fs::is_regular_file(meta)) {
    std::istringstream in(read_file(meta.string()));
    std::vector<std::string> names;
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
      if (!line.empty()) names.push_back(line);
    }
    GS_CHECK(names.size() == 10, "load_cifar10: %s lists %zu class names, expected 10", meta.string().c_str(),
             names.size());
    d.class_names = names;
  }
  d.description =
      std::string("cifar10 ") + (train ? "train" : "test") + " (" + std::to_string(n) + " images, " + dir + ")";
  return d;
}

// ---------------- spec ----------------

Dataset load_dataset(const std::string& spec, bool train) {
  auto colon = spec.find(':');
  std::string kind = spec.substr(0, colon);
  std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  auto need_arg = [&](const char* what) {
    GS_CHECK(!arg.empty(), "load_dataset: '%s' needs %s after the colon, e.g. %s:%s", spec.c_str(), what, kind.c_str(),
             what);
  };
  if (kind == "fashion-mnist" || kind == "fashion_mnist" || kind == "fashionmnist")
    return load_fashion_mnist(arg.empty() ? kFashionMnistDir : arg, train);
  if (kind == "mnist") {
    need_arg("<dir>");
    return load_mnist_format(arg, train);
  }
  if (kind == "idx") {
    need_arg("<dir>");
    auto comma = arg.find(',');
    if (comma == std::string::npos) return load_mnist_format(arg, train);
    Dataset d = load_idx(arg.substr(0, comma), arg.substr(comma + 1));
    d.test_is_train = !train;
    return d;
  }
  if (kind == "cifar10" || kind == "cifar-10") {
    need_arg("<dir>");
    return load_cifar10(arg, train);
  }
  if (kind == "folder") {
    need_arg("<dir>");
    int64_t h = 0, w = 0, c = 3;
    std::string dir = arg;
    auto last = arg.rfind(':');
    if (last != std::string::npos) {
      std::string size = arg.substr(last + 1);
      long long hh = 0, ww = 0, cc = 3;
      char x1 = 0, x2 = 0, extra = 0;
      int got = std::sscanf(size.c_str(), "%lld%c%lld%c%lld%c", &hh, &x1, &ww, &x2, &cc, &extra);
      bool ok = (got == 3 && x1 == 'x') || (got == 5 && x1 == 'x' && x2 == 'x');
      GS_CHECK(ok && hh >= 0 && ww >= 0 && (hh == 0) == (ww == 0) && hh <= 4096 && ww <= 4096 &&
                   (cc == 1 || cc == 3 || cc == 4),
               "load_dataset: '%s': bad image size '%s', expected HxW or HxWxC with H and W at most 4096 "
               "(0x0: the first image's size) and C 1, 3 or 4 (e.g. folder:%s:32x32)",
               spec.c_str(), size.c_str(), arg.substr(0, last).c_str());
      dir = arg.substr(0, last);
      h = hh, w = ww, c = cc;
    }
    fs::path root(dir);
    if (fs::is_directory(root / "train")) {
      if (train) return load_image_folder((root / "train").string(), h, w, c);
      for (const char* name : {"test", "val", "valid", "validation"}) {
        if (!fs::is_directory(root / name)) continue;
        // Labels index the training classes by name: a test folder may lack a class, but a sorted
        // index of its own would score its images against another class's label. At 0x0 the test
        // images take the training images' size, so the model fits both.
        const std::string train_dir = (root / "train").string();
        if (h == 0) std::tie(h, w) = image_folder_first_size(train_dir);
        return load_image_folder((root / name).string(), h, w, c, image_folder_classes(train_dir));
      }
      GS_CHECK(false, "load_dataset: %s has a train/ folder but no test/ or val/ folder for the test set", dir.c_str());
    }
    Dataset d = load_image_folder(dir, h, w, c);
    d.test_is_train = !train;
    return d;
  }
  GS_CHECK(false,
           "load_dataset: unknown dataset '%s'; expected fashion-mnist[:<dir>], mnist:<dir>, idx:<dir>, "
           "idx:<images>,<labels>, cifar10:<dir> or folder:<dir>[:HxW]",
           spec.c_str());
  return {};
}

// ---------------- splits and subsets ----------------

Dataset subset(const Dataset& d, const std::vector<int64_t>& indices) {
  GS_CHECK(d.images.defined() && d.labels.defined(), "subset: the dataset has no images or labels");
  Tensor images = raw::contiguous(d.images);
  Shape shape = images.shape();
  int64_t n = d.size();
  int64_t row = n > 0 ? images.numel() / n : 0;
  shape[0] = static_cast<int64_t>(indices.size());
  Dataset out;
  out.images = empty(shape, {images.dtype()});
  out.labels = empty({shape[0]}, {DType::I64});
  const char* src = static_cast<const char*>(images.raw_data());
  char* dst = static_cast<char*>(out.images.raw_data());
  size_t row_bytes = static_cast<size_t>(row) * dtype_size(images.dtype());
  Tensor labels = raw::contiguous(d.labels);
  const int64_t* l = labels.data<int64_t>();
  int64_t* ol = out.labels.data<int64_t>();
  for (size_t i = 0; i < indices.size(); ++i) {
    int64_t k = indices[i];
    GS_CHECK(k >= 0 && k < n, "subset: index %lld out of range for a dataset of %lld examples", (long long)k,
             (long long)n);
    std::memcpy(dst + i * row_bytes, src + static_cast<size_t>(k) * row_bytes, row_bytes);
    ol[i] = l[k];
    if (d.source_heights.size() == static_cast<size_t>(n)) {
      out.source_heights.push_back(d.source_heights[static_cast<size_t>(k)]);
      out.source_widths.push_back(d.source_widths[static_cast<size_t>(k)]);
    }
  }
  out.num_classes = d.num_classes;
  out.class_names = d.class_names;
  out.test_is_train = d.test_is_train;
  out.description = d.description + ", subset of " + std::to_string(indices.size());
  return out;
}

namespace {
// Indices of each class, in dataset order.
std::vector<std::vector<int64_t>> indices_by_class(const Dataset& d, const char* op) {
  GS_CHECK(d.num_classes > 0 && d.labels.defined(),
           "%s: the dataset has num_classes %lld; stratifying needs labels "
           "in 0..num_classes-1",
           op, (long long)d.num_classes);
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(d.num_classes));
  Tensor labels = raw::contiguous(d.labels);
  const int64_t* l = labels.data<int64_t>();
  for (int64_t i = 0; i < d.size(); ++i) {
    GS_CHECK(l[i] >= 0 && l[i] < d.num_classes, "%s: label %lld of example %lld is outside 0..%lld", op,
             (long long)l[i], (long long)i, (long long)(d.num_classes - 1));
    by_class[static_cast<size_t>(l[i])].push_back(i);
  }
  return by_class;
}

void shuffle(std::vector<int64_t>& v, Generator& gen) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(gen.randint(0, (int64_t)i))]);
}
}  // namespace

std::pair<Dataset, Dataset> split_validation(const Dataset& d, double fraction, uint64_t seed) {
  GS_CHECK(fraction >= 0 && fraction < 1, "split_validation: fraction %g must be in [0, 1)", fraction);
  Generator gen(seed);
  std::vector<int64_t> train, val;
  for (auto& members : indices_by_class(d, "split_validation")) {
    shuffle(members, gen);
    size_t k = static_cast<size_t>(std::llround(fraction * static_cast<double>(members.size())));
    val.insert(val.end(), members.begin(), members.begin() + static_cast<std::ptrdiff_t>(k));
    train.insert(train.end(), members.begin() + static_cast<std::ptrdiff_t>(k), members.end());
  }
  std::sort(train.begin(), train.end());
  std::sort(val.begin(), val.end());
  Dataset t = subset(d, train), v = subset(d, val);
  t.description = d.description + ", training split (" + std::to_string(train.size()) + ")";
  v.description = d.description + ", validation split (" + std::to_string(val.size()) + ")";
  return {std::move(t), std::move(v)};
}

Dataset stratified_subset(const Dataset& d, int64_t n, uint64_t seed) {
  GS_CHECK(n > 0, "stratified_subset: n must be positive, got %lld", (long long)n);
  if (n >= d.size()) {
    std::vector<int64_t> all(static_cast<size_t>(d.size()));
    std::iota(all.begin(), all.end(), 0);
    return subset(d, all);
  }
  auto by_class = indices_by_class(d, "stratified_subset");
  // Largest remainder: floor of each class's share, then the leftover to the largest fractions.
  std::vector<int64_t> quota(by_class.size());
  std::vector<std::pair<double, size_t>> remainders;
  int64_t given = 0;
  for (size_t c = 0; c < by_class.size(); ++c) {
    double share = static_cast<double>(n) * static_cast<double>(by_class[c].size()) / static_cast<double>(d.size());
    quota[c] = static_cast<int64_t>(std::floor(share));
    given += quota[c];
    remainders.push_back({share - std::floor(share), c});
  }
  std::stable_sort(remainders.begin(), remainders.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t i = 0; given < n && i < remainders.size(); ++i, ++given) ++quota[remainders[i].second];
  Generator gen(seed);
  std::vector<int64_t> picked;
  for (size_t c = 0; c < by_class.size(); ++c) {
    shuffle(by_class[c], gen);
    int64_t take = std::min<int64_t>(quota[c], static_cast<int64_t>(by_class[c].size()));
    picked.insert(picked.end(), by_class[c].begin(), by_class[c].begin() + take);
  }
  std::sort(picked.begin(), picked.end());
  Dataset out = subset(d, picked);
  out.description = d.description + ", stratified subset of " + std::to_string(picked.size());
  return out;
}

}  // namespace gs::io
