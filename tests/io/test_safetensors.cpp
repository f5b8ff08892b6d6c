// safetensors: round trips of every dtype (0-d and empty included), the byte layout, every malformed
// file giving an error that names the file and the problem, and atomic writes that keep the old file.
#include <sys/resource.h>

#include <csignal>
#include <cstring>

#include "io/safetensors.h"
#include "io_test_util.h"
#include "tensor/raw_ops.h"
#include "tests/helpers.h"

namespace gs::io {
namespace {

using test::TempDir;

std::vector<std::pair<std::string, Tensor>> sample_tensors() {
  return {
      {"weight", from_vector<float>({1.5f, -2.25f, 3.0f, 1e-30f, -0.0f, 7.0f}, {2, 3})},
      {"double", from_vector<double>({0.1, -1e300, 3.141592653589793}, {3})},
      {"steps", from_vector<int64_t>({int64_t{1} << 40, -7, 0, 9223372036854775807LL}, {2, 2})},
      {"scalar", scalar_tensor(2.5, {DType::F64})},
      {"empty", zeros({0, 4})},
      {"empty_i64", zeros({0}, {DType::I64})},
  };
}

void expect_identical(const Tensor& a, const Tensor& b, const std::string& name) {
  ASSERT_EQ(a.dtype(), b.dtype()) << name;
  ASSERT_EQ(shape_str(a.shape()), shape_str(b.shape())) << name;
  size_t nbytes = static_cast<size_t>(a.numel()) * dtype_size(a.dtype());
  Tensor ca = raw::contiguous(a), cb = raw::contiguous(b);
  if (nbytes) {
    EXPECT_EQ(std::memcmp(ca.raw_data(), cb.raw_data(), nbytes), 0) << name << " differs";
  }
}

TEST(Safetensors, RoundTripAllDtypesAndMetadata) {
  TempDir dir;
  std::string path = dir.file("model.safetensors");
  auto tensors = sample_tensors();
  std::map<std::string, std::string> meta = {{"epoch", "3"}, {"format", "pt"}, {"note", "quotes \" and \\ é"}};
  save_safetensors(path, tensors, meta);
  SafetensorsFile file = load_safetensors(path);
  ASSERT_EQ(file.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(file.tensors[i].first, tensors[i].first) << "order is kept";
    expect_identical(file.tensors[i].second, tensors[i].second, tensors[i].first);
  }
  EXPECT_EQ(file.metadata, meta);
  EXPECT_EQ(file.at("scalar").dim(), 0);
  EXPECT_EQ(file.at("scalar").item(), 2.5);
  EXPECT_TRUE(file.contains("empty"));
  EXPECT_THROW_MSG(file.at("nope"), "no tensor named 'nope'");
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"model.safetensors"}) << "no temp files left";
}

TEST(Safetensors, NonContiguousTensorIsWrittenInLogicalOrder) {
  TempDir dir;
  Tensor t = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor tt = raw::transpose(t, 0, 1);  // [3,2]: 1 4 2 5 3 6
  save_safetensors(dir.file("t.safetensors"), {{"t", tt}});
  Tensor back = load_safetensors(dir.file("t.safetensors")).at("t");
  EXPECT_EQ(shape_str(back.shape()), "[3,2]");
  EXPECT_EQ(back.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(Safetensors, ByteLayoutFollowsTheFormat) {
  TempDir dir;
  std::string path = dir.file("a.safetensors");
  save_safetensors(path, {{"a", from_vector<float>({1, 2}, {2})}, {"b", from_vector<int64_t>({5}, {1})}}, {{"k", "v"}});
  std::string bytes = test::read_bytes(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u) << "header padded to 8 bytes";
  std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.substr(0, header.find_last_not_of(' ') + 1),
            R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
            R"("b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}})");
  EXPECT_EQ(bytes.size(), 8 + n + 16);
  float a1;
  std::memcpy(&a1, bytes.data() + 8 + n + 4, 4);
  EXPECT_EQ(a1, 2.0f);
}

TEST(Safetensors, SaveRejectsBadInputsBeforeTouchingTheDisk) {
  TempDir dir;
  std::string path = dir.file("x.safetensors");
  Tensor t = ones({2});
  EXPECT_THROW_MSG(save_safetensors(path, {{"a", t}, {"a", t}}), "'a' appears twice");
  EXPECT_THROW_MSG(save_safetensors(path, {{"", t}}), "empty name");
  EXPECT_THROW_MSG(save_safetensors(path, {{"__metadata__", t}}), "reserved");
  EXPECT_THROW_MSG(save_safetensors(path, {{"u", Tensor()}}), "'u' is undefined");
  EXPECT_TRUE(dir.listing().empty());
}

// ---- malformed files: each error names the file and the problem ----

// A file with the given header text and `data_bytes` zero bytes of data.
std::string make_file(const TempDir& dir, const std::string& name, const std::string& header, size_t data_bytes) {
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes += header;
  bytes += std::string(data_bytes, '\0');
  std::string path = dir.file(name);
  test::write_bytes(path, bytes);
  return path;
}

void expect_load_error(const std::string& path, const std::string& problem) {
  EXPECT_THROW_MSG(load_safetensors(path), path);
  EXPECT_THROW_MSG(load_safetensors(path), problem);
}

TEST(Safetensors, MalformedFilesNameFileAndProblem) {
  TempDir dir;
  std::string good = dir.file("good.safetensors");
  save_safetensors(good, {{"w", ones({4, 4})}});
  std::string bytes = test::read_bytes(good);

  std::string p = dir.file("tiny.safetensors");
  test::write_bytes(p, "abc");
  expect_load_error(p, "truncated");

  p = dir.file("cut.safetensors");
  test::write_bytes(p, bytes.substr(0, bytes.size() - 10));
  expect_load_error(p, "out of range");

  p = dir.file("cut_header.safetensors");
  test::write_bytes(p, bytes.substr(0, 20));
  expect_load_error(p, "header length");

  p = dir.file("huge_header.safetensors");
  test::write_bytes(p, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}");
  expect_load_error(p, "100 MB");

  expect_load_error(make_file(dir, "json.safetensors", R"({"w": {"dtype": "F32", )", 0), "bad header JSON");
  expect_load_error(make_file(dir, "array.safetensors", "[1, 2]", 0), "expected an object");
  expect_load_error(make_file(dir, "nofield.safetensors", R"({"w":{"dtype":"F32","shape":[1]}})", 4),
                    "needs dtype, shape and data_offsets");
  expect_load_error(
      make_file(dir, "shape.safetensors", R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
      "not a non-negative integer");
  expect_load_error(make_file(dir, "offs.safetensors", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4),
                    "is not [begin, end]");
  expect_load_error(
      make_file(dir, "range.safetensors", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8),
      "out of range");
  expect_load_error(
      make_file(dir, "reversed.safetensors", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", 8),
      "end before they begin");
  expect_load_error(make_file(dir, "size.safetensors", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                    "needs 12 bytes but data_offsets [0,8] hold 8");
  expect_load_error(make_file(dir, "overlap.safetensors",
                              R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                              12),
                    "overlapping data_offsets");
  expect_load_error(make_file(dir, "bf16.safetensors", R"({"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", 4),
                    "dtype BF16");
  expect_load_error(make_file(dir, "u8.safetensors", R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 2),
                    "dtype U8");
  expect_load_error(make_file(dir, "weird.safetensors", R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}})", 2),
                    "unknown dtype 'Q4'");
  expect_load_error(make_file(dir, "meta.safetensors", R"({"__metadata__":{"a":1}})", 0), "__metadata__['a']");
  // Found by an io audit, all refused by the reference reader (safetensors 0.4.5) and accepted here:
  // a name twice (the last one won), bytes no tensor holds, a BOM before the header.
  expect_load_error(make_file(dir, "twice.safetensors",
                              R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                              8),
                    "bad header: 'w' appears twice");
  p = dir.file("trailing.safetensors");
  test::write_bytes(p, bytes + "extra");
  expect_load_error(p, "the tensors hold 64 of the 69 data bytes after the header");
  expect_load_error(make_file(dir, "gap.safetensors",
                              R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                              12),
                    "hold 8 of the 12 data bytes");
  expect_load_error(make_file(dir, "bom.safetensors", "\xef\xbb\xbf{}", 0), "it must start with '{'");
  EXPECT_THROW_MSG(load_safetensors(dir.file("missing.safetensors")), "missing.safetensors");
}

TEST(Safetensors, ConvertDtypesWidensForeignTypes) {
  TempDir dir;
  // U8 [3] = 1 2 255; I32 [2] = -5 7; BF16 [1] = 1.5; F16 [2] = 1.0, -2.0
  std::string header =
      R"({"u":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"i":{"dtype":"I32","shape":[2],"data_offsets":[3,11]},)"
      R"("b":{"dtype":"BF16","shape":[1],"data_offsets":[11,13]},"h":{"dtype":"F16","shape":[2],"data_offsets":[13,17]}})";
  std::string path = make_file(dir, "foreign.safetensors", header, 0);
  std::string bytes = test::read_bytes(path);
  std::string data(17, '\0');  // unaligned, as the format allows
  data[0] = 1, data[1] = 2, data[2] = static_cast<char>(255);
  int32_t ints[2] = {-5, 7};
  std::memcpy(&data[3], ints, 8);
  uint16_t bf = 0x3fc0, h[2] = {0x3c00, 0xc000};
  std::memcpy(&data[11], &bf, 2);
  std::memcpy(&data[13], h, 4);
  test::write_bytes(path, bytes + data);
  SafetensorsFile f = load_safetensors(path, {.convert_dtypes = true});
  EXPECT_EQ(f.at("u").to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 255}));
  EXPECT_EQ(f.at("i").to_vector<int64_t>(), (std::vector<int64_t>{-5, 7}));
  EXPECT_EQ(f.at("b").to_vector<float>(), (std::vector<float>{1.5f}));
  EXPECT_EQ(f.at("h").to_vector<float>(), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_THROW_MSG(load_safetensors(path), "convert_dtypes");
}

// ---- atomic writes ----

TEST(AtomicWrite, ReplacesTheFileAndLeavesNoTempFiles) {
  TempDir dir;
  std::string path = dir.file("config.json");
  write_file_atomic(path, "old");
  write_file_atomic(path, "new contents");
  EXPECT_EQ(test::read_bytes(path), "new contents");
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"config.json"});
}

TEST(AtomicWrite, WriterThatThrowsKeepsOldFile) {
  TempDir dir;
  std::string path = dir.file("ckpt.safetensors");
  save_safetensors(path, {{"w", ones({3})}});
  std::string before = test::read_bytes(path);
  EXPECT_THROW_MSG(
      {
        AtomicFile f(path);
        f.write("half a checkpoint");
        EXPECT_TRUE(std::filesystem::exists(f.temp_path()));
        throw Error("a tensor failed to serialise");
      },
      "a tensor failed");
  EXPECT_EQ(test::read_bytes(path), before);
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"ckpt.safetensors"});
}

TEST(AtomicWrite, FailedRenameKeepsOldAndRemovesTemp) {
  TempDir dir;
  // The target is a non-empty directory: the data is written, the rename fails.
  std::filesystem::create_directory(dir.file("target"));
  test::write_bytes(dir.file("target/keep"), "old");
  EXPECT_THROW_MSG(save_safetensors(dir.file("target"), {{"w", ones({3})}}), "cannot replace");
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"target"});
  EXPECT_EQ(test::read_bytes(dir.file("target/keep")), "old");
}

TEST(AtomicWrite, MissingDirectoryNamesThePath) {
  TempDir dir;
  EXPECT_THROW_MSG(write_file_atomic(dir.file("no/such/dir/f.json"), "x"), "no/such/dir/f.json");
}

TEST(AtomicWrite, ReadOnlyDirectoryKeepsOldFile) {
  TempDir dir;
  std::string sub = dir.file("ro");
  std::filesystem::create_directory(sub);
  std::string path = sub + "/ckpt.safetensors";
  save_safetensors(path, {{"w", ones({3})}});
  std::string before = test::read_bytes(path);
  std::filesystem::permissions(sub, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  bool root_bypasses = ::access(sub.c_str(), W_OK) == 0;
  if (!root_bypasses) {
    EXPECT_THROW_MSG(save_safetensors(path, {{"w", zeros({3})}}), "cannot create a temp file");
    EXPECT_EQ(test::read_bytes(path), before);
  }
  std::filesystem::permissions(sub, std::filesystem::perms::owner_all);
  EXPECT_EQ(std::filesystem::directory_iterator(sub)->path().filename(), "ckpt.safetensors");
  if (root_bypasses) GTEST_SKIP() << "running as root: permissions do not stop writes (see WriteFailsMidway)";
}

TEST(AtomicWrite, WriteFailsMidwayKeepsOldFile) {
  // RLIMIT_FSIZE makes write() fail with EFBIG part-way through a large checkpoint: a real I/O error.
  TempDir dir;
  std::string path = dir.file("ckpt.safetensors");
  save_safetensors(path, {{"w", ones({8})}});
  std::string before = test::read_bytes(path);
  struct rlimit old_limit {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  bool threw = false;
  std::string message;
  try {
    save_safetensors(path, {{"big", zeros({1 << 16})}});
  } catch (const Error& e) {
    threw = true;
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(threw);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("old file is left unchanged"), std::string::npos) << message;
  EXPECT_EQ(test::read_bytes(path), before);
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"ckpt.safetensors"});
}

}  // namespace
}  // namespace gs::io
