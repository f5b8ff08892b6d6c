// TensorBoard HParams summaries for a search, so TensorBoard's HParams tab shows every trial:
// the search directory gets the experiment (hparam domains, the objective metric), each trial
// directory a session (its values, the objective per epoch as scalars, success or failure). The
// protobuf messages (tensorboard/plugins/hparams/api.proto, plugin_data.proto) are encoded by hand
// and framed as TFRecords with io/tensorboard.h's CRC, in their own events file.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/search_space.h"

namespace gs::train {

// <dir>/events.out.tfevents.<time>.hparams with the Experiment summary.
void write_hparams_experiment(const std::string& dir, const SearchSpace& space, const std::string& metric);
// <trial_dir>/events.out.tfevents.<time>.hparams: session start (values), `metric` per epoch, session end.
void write_hparams_session(const std::string& trial_dir, const SearchSpace& space, const nlohmann::json& params,
                           const std::string& metric, const std::vector<double>& curve, bool success);

}  // namespace gs::train
