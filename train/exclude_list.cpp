// Reading and applying `train --exclude-list` files (train/exclude_list.h).
#include "train/exclude_list.h"

#include <algorithm>
#include <cctype>
#include <fstream>

#include "tensor/error.h"

namespace gs::train {

namespace {
std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}
}  // namespace

std::vector<int64_t> read_exclude_list(const std::string& path, int64_t train_size) {
  std::ifstream in(path);
  GS_CHECK(in.good(), "--exclude-list: cannot open '%s'", path.c_str());
  std::vector<int64_t> indices;
  std::string line;
  bool first_data_line = true;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    std::string text = trim(line);
    if (text.empty() || text[0] == '#') continue;
    std::string field = trim(text.substr(0, text.find(',')));
    if (first_data_line && field == "index") {  // the header of a CSV such as outliers.csv
      first_data_line = false;
      continue;
    }
    first_data_line = false;
    bool digits = !field.empty() && field.size() <= 18 &&
                  std::all_of(field.begin(), field.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); });
    GS_CHECK(digits, "--exclude-list %s line %lld: '%s' is not a training-set index (expected a non-negative integer, "
             "one per line, or a CSV with the index first)", path.c_str(), (long long)line_no, field.c_str());
    int64_t index = std::stoll(field);
    GS_CHECK(index < train_size, "--exclude-list %s line %lld: index %lld is out of range: the training set has %lld "
             "images (indices 0..%lld, in file order)", path.c_str(), (long long)line_no, (long long)index,
             (long long)train_size, (long long)train_size - 1);
    indices.push_back(index);
  }
  GS_CHECK(!in.bad(), "--exclude-list: error reading '%s'", path.c_str());
  std::sort(indices.begin(), indices.end());
  indices.erase(std::unique(indices.begin(), indices.end()), indices.end());
  return indices;
}

io::Dataset drop_indices(const io::Dataset& d, const std::vector<int64_t>& excluded) {
  std::vector<int64_t> kept;
  kept.reserve(static_cast<size_t>(d.size()));
  size_t next = 0;
  for (int64_t i = 0; i < d.size(); ++i) {
    while (next < excluded.size() && excluded[next] < i) ++next;
    if (next < excluded.size() && excluded[next] == i) continue;
    kept.push_back(i);
  }
  GS_CHECK(!kept.empty(), "--exclude-list: excludes all %lld training images", (long long)d.size());
  io::Dataset out = io::subset(d, kept);
  out.description = d.description + ", " + std::to_string(d.size() - static_cast<int64_t>(kept.size())) + " excluded";
  return out;
}

io::Dataset load_training_set(const TrainConfig& config) {
  io::Dataset train = io::load_dataset(config.data, true);
  if (config.exclude_list.empty()) return train;
  return drop_indices(train, read_exclude_list(config.exclude_list, train.size()));
}

}  // namespace gs::train
