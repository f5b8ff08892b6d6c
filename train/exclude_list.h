// `train --exclude-list F`: a file of training-set indices (file order of the full training set,
// before the validation split and --limit-train) that training leaves out, e.g. the outliers.csv
// written by `gradscope inspect outliers`. The Trainer calls load_training_set().
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/dataset.h"
#include "train/config.h"

namespace gs::train {

// One index per line, or a CSV whose first column is the index (a header line starting with
// "index" is skipped); blank lines and lines starting with '#' are ignored, repeats count once.
// Errors name the file and line: not an integer, negative, or >= train_size. Returns sorted indices.
std::vector<int64_t> read_exclude_list(const std::string& path, int64_t train_size);

// `d` without the examples at `excluded` (sorted, in range); the rest keep their order.
io::Dataset drop_indices(const io::Dataset& d, const std::vector<int64_t>& excluded);

// The full training set of config.data in file order, minus config.exclude_list when set.
io::Dataset load_training_set(const TrainConfig& config);

}  // namespace gs::train
