// gs_safetensors_tool: lets tests/interop/test_io_safetensors.py check gs::io against Python's safetensors.
//   dump <file> [--convert]   prints {"tensors":[{name,dtype,shape,values}],"metadata":{}} as JSON
//   copy <in> <out>           loads and saves again (same order, same metadata)
//   write <out>               writes the fixed sample the Python test expects
// Errors go to stderr with exit status 1.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"

namespace {

nlohmann::ordered_json dump(const gs::io::SafetensorsFile& file) {
  nlohmann::ordered_json out;
  out["tensors"] = nlohmann::ordered_json::array();
  for (const auto& [name, t] : file.tensors) {
    nlohmann::ordered_json entry;
    entry["name"] = name;
    entry["dtype"] = gs::dtype_name(t.dtype());
    entry["shape"] = t.shape();
    if (t.dtype() == gs::DType::I64) {
      entry["values"] = t.to_vector<int64_t>();
    } else {
      entry["values"] = t.to_vector<double>();  // f32 widened exactly
    }
    out["tensors"].push_back(entry);
  }
  out["metadata"] = file.metadata;
  return out;
}

void write_sample(const std::string& path) {
  std::vector<float> w(24);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i) * 0.25f - 3.0f;
  std::vector<std::pair<std::string, gs::Tensor>> tensors = {
      {"conv.weight", gs::from_vector<float>(w, {2, 3, 2, 2})},
      {"bn.num_batches_tracked", gs::scalar_tensor(7, {gs::DType::I64})},
      {"precise", gs::from_vector<double>({0.1, -1e-300, 1e300}, {3})},
      {"empty", gs::zeros({0, 5})},
      {"steps", gs::from_vector<int64_t>({-1, 0, int64_t{1} << 53}, {3, 1})},
  };
  gs::io::save_safetensors(path, tensors, {{"epoch", "12"}, {"format", "pt"}, {"model", "fashionnet"}});
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.size() >= 2 && args[0] == "dump") {
      gs::io::SafetensorsLoadOptions opt;
      opt.convert_dtypes = args.size() > 2 && args[2] == "--convert";
      std::cout << dump(gs::io::load_safetensors(args[1], opt)).dump() << "\n";
    } else if (args.size() == 3 && args[0] == "copy") {
      auto file = gs::io::load_safetensors(args[1]);
      gs::io::save_safetensors(args[2], file.tensors, file.metadata);
    } else if (args.size() == 2 && args[0] == "write") {
      write_sample(args[1]);
    } else {
      std::cerr << "usage: gs_safetensors_tool dump <file> [--convert] | copy <in> <out> | write <out>\n";
      return 2;
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
