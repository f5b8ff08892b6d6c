// `gradscope inspect data | errors | outliers`: pictures and tables of what the network sees and
// what it gets wrong. The numbers come from inspect/data_stats.h, inspect/errors.h and
// inspect/outliers.h, the pictures from inspect/images.h, predictions and embeddings from train/predict.h.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "inspect/data_stats.h"
#include "inspect/errors.h"
#include "inspect/images.h"
#include "inspect/outliers.h"
#include "io/dataloader.h"
#include "io/safetensors.h"
#include "tensor/raw_ops.h"
#include "train/checkpoint.h"
#include "train/exclude_list.h"
#include "train/predict.h"
#include "train/trainer.h"

namespace gs::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

std::string percent(double p) { return std::to_string(int(std::lround(100 * p))) + "%"; }

std::string class_name(const io::Dataset& d, int64_t k) {
  return size_t(k) < d.class_names.size() ? d.class_names[size_t(k)] : std::to_string(k);
}

std::vector<std::string> class_names(const io::Dataset& d) {
  std::vector<std::string> names;
  for (int64_t k = 0; k < d.num_classes; ++k) names.push_back(class_name(d, k));
  return names;
}

void save(const inspect::Canvas& canvas, const std::string& path, std::vector<std::string>& written) {
  canvas.save_png(path);
  written.push_back(path);
}

void save_text(const std::string& text, const std::string& path, std::vector<std::string>& written) {
  io::write_file_atomic(path, text);
  written.push_back(path);
}

void print_written(const std::vector<std::string>& written) {
  std::printf("wrote:");
  for (const auto& w : written) std::printf(" %s", w.c_str());
  std::printf("\n");
}

// ---------------- inspect data ----------------

struct DataOptions {
  train::TrainConfig config;
  std::string config_file, split = "train", out = "runs/inspect/data";
  int64_t per_class = 8, views = 6, limit = 0, epoch = 1;
  int bins = 40, zoom = 3;
};

void run_data(CLI::App* cmd, const DataOptions& o) {
  train::TrainConfig c = resolve_config(cmd, o.config, o.config_file);
  train::apply_runtime_settings(c.threads, c.kernels);
  GS_CHECK(o.per_class > 0 && o.views >= 0 && o.bins > 0 && o.zoom > 0 && o.limit >= 0,
           "inspect data: --per-class, --bins and --zoom must be positive, --views and --limit non-negative");
  io::Dataset train_full = train::load_training_set(c);
  // The training set in file order (train_full lacks the excluded images), or the test set.
  io::Dataset data = o.split == "test"        ? io::load_dataset(c.data, false)
                     : c.exclude_list.empty() ? train_full
                                              : io::load_dataset(c.data, true);
  if (o.limit > 0 && o.limit < data.size()) {
    std::vector<int64_t> first(static_cast<size_t>(o.limit));
    for (int64_t i = 0; i < o.limit; ++i) first[size_t(i)] = i;
    data = io::subset(data, first);
  }
  fs::create_directories(o.out);
  std::vector<std::string> written;
  const std::vector<int64_t> labels = data.labels.to_vector<int64_t>();
  const std::vector<std::string> names = class_names(data);

  // What the network sees: the first --per-class images of each class (file order) through the
  // training transform (augmentation, then normalisation), drawn as the DataLoader draws epoch --epoch.
  auto norm = train::default_normalization(c.data, train_full);
  auto augment = io::make_augmentation(c.augment);
  const bool augmented = augment->describe() != "none";
  std::vector<std::shared_ptr<io::Transform>> parts{augment, norm};
  auto transform = std::make_shared<io::Compose>(parts);
  const Shape shape = data.image_shape();
  std::vector<std::vector<int64_t>> chosen(size_t(data.num_classes));
  for (size_t i = 0; i < labels.size(); ++i)
    if (int64_t(chosen[size_t(labels[i])].size()) < o.per_class) chosen[size_t(labels[i])].push_back(int64_t(i));
  auto seen_by_network = [&](int64_t index, int64_t epoch, const io::Transform& t) {
    Tensor image = raw::clone(raw::narrow(data.images, 0, index, 1));
    image = raw::reshape(image, shape);
    Generator gen(io::example_seed(c.seed, epoch, index));
    return raw::contiguous(t.apply(image, gen));
  };
  std::vector<Tensor> tiles_images;
  std::vector<std::vector<inspect::GridTile>> rows;
  std::vector<std::string> row_labels;
  for (int64_t k = 0; k < data.num_classes; ++k) {
    std::vector<inspect::GridTile> row;
    for (int64_t index : chosen[size_t(k)]) {
      row.push_back({int64_t(tiles_images.size()), {"#" + std::to_string(index)}});
      tiles_images.push_back(
          raw::reshape(seen_by_network(index, o.epoch, *transform), {1, shape[0], shape[1], shape[2]}));
    }
    rows.push_back(row);
    row_labels.push_back(std::to_string(k) + " " + names[size_t(k)]);
  }
  GS_CHECK(!tiles_images.empty(), "inspect data: %s has no images", data.description.c_str());
  Tensor grid_images = raw::cat(tiles_images, 0);
  save(inspect::image_grid(grid_images, rows,
                           {.zoom = o.zoom,
                            .title = "INPUT SEEN BY THE NETWORK (AUGMENT " + c.augment + ", NORMALISED)",
                            .row_labels = row_labels}),
       o.out + "/samples.png", written);

  // Augmentation: one image per class, then --views draws (epochs 1, 2, ...).
  if (augmented && o.views > 0) {
    std::vector<Tensor> views;
    std::vector<std::vector<inspect::GridTile>> view_rows;
    for (int64_t k = 0; k < data.num_classes; ++k) {
      if (chosen[size_t(k)].empty()) continue;
      const int64_t index = chosen[size_t(k)][0];
      std::vector<inspect::GridTile> row{{int64_t(views.size()), {"ORIGINAL"}}};
      views.push_back(raw::reshape(seen_by_network(index, 0, *norm), {1, shape[0], shape[1], shape[2]}));
      for (int64_t v = 1; v <= o.views; ++v) {
        row.push_back({int64_t(views.size()), {"EPOCH " + std::to_string(v)}});
        views.push_back(raw::reshape(seen_by_network(index, v, *transform), {1, shape[0], shape[1], shape[2]}));
      }
      view_rows.push_back(row);
    }
    std::vector<std::string> view_labels;
    for (int64_t k = 0; k < data.num_classes; ++k)
      if (!chosen[size_t(k)].empty()) view_labels.push_back(std::to_string(k) + " " + names[size_t(k)]);
    save(inspect::image_grid(raw::cat(views, 0), view_rows,
                             {.zoom = o.zoom, .title = "AUGMENTATION: " + c.augment, .row_labels = view_labels}),
         o.out + "/augmentations.png", written);
  }

  // Metadata (sizes as in the files, pixels before normalisation) and its distributions.
  inspect::ImageMetadata meta = inspect::image_metadata(data.images, data.source_heights, data.source_widths);
  for (size_t m = 0; m < meta.names.size(); ++m) {
    inspect::Distribution d = inspect::distribution(meta.values[m], o.bins);
    save(inspect::histogram_chart(meta.names[m] + " (" + o.split + ")", d.edges, d.counts),
         o.out + "/hist_" + meta.names[m] + ".png", written);
  }
  save_text(inspect::metadata_csv(meta, labels), o.out + "/metadata.csv", written);
  json summary = json::parse(inspect::metadata_summary_json(meta, labels, names, o.bins));
  summary["data"] = data.description;
  summary["split"] = o.split;
  summary["transform"] = transform->describe();
  summary["class_counts"] = data.class_counts();
  save_text(summary.dump(2) + "\n", o.out + "/metadata_summary.json", written);

  std::printf("%s: %lld images, %lld classes; transform: %s\n", data.description.c_str(), (long long)data.size(),
              (long long)data.num_classes, transform->describe().c_str());
  std::printf("%-12s %10s %10s %10s %10s %10s\n", "metric", "mean", "std", "min", "p50", "max");
  for (const auto& [name, s] : summary["metrics"].items())
    std::printf("%-12s %10.4g %10.4g %10.4g %10.4g %10.4g\n", name.c_str(), s["mean"].get<double>(),
                s["std"].get<double>(), s["min"].get<double>(), s["p50"].get<double>(), s["max"].get<double>());
  print_written(written);
}

// ---------------- inspect errors ----------------

struct CheckpointOptions {
  train::TrainConfig config;
  std::string config_file, checkpoint, split = "test", out;
  int64_t batch = 256, limit = 0, top = 36, k = 5;
  int pairs = 5, zoom = 3;
};

struct Loaded {
  train::TrainConfig config;
  io::Dataset data;  // the split inspected, in file order (first --limit images)
  nn::ModulePtr model;
  std::shared_ptr<io::Transform> norm;
};

Loaded load_model_and_data(CLI::App* cmd, const CheckpointOptions& o, const std::string& split) {
  Loaded l;
  l.config = resolve_for_checkpoint(cmd, o.config, o.config_file, o.checkpoint);
  GS_CHECK(cmd->count("--device") == 0 || Device::parse(l.config.device).is_cpu(),
           "inspect: --device %s: inspect runs its model on the CPU", l.config.device.c_str());
  l.config.device = "cpu";  // a --config of a GPU run included
  train::apply_runtime_settings(l.config.threads, l.config.kernels);
  GS_CHECK(o.batch > 0 && o.limit >= 0 && o.top > 0 && o.k > 0 && o.pairs >= 0 && o.zoom > 0,
           "inspect: --batch, --top, --k and --zoom must be positive, --limit and --pairs non-negative");
  io::Dataset train_full = train::load_training_set(l.config);  // as the trainer normalised it
  l.data = split == "test"                 ? io::load_dataset(l.config.data, false)
           : l.config.exclude_list.empty() ? train_full
                                           : io::load_dataset(l.config.data, true);
  if (l.data.test_is_train)
    std::fprintf(stderr, "warning: inspect: %s has no test set of its own; --split test looks at the training images\n",
                 l.config.data.c_str());
  if (o.limit > 0 && o.limit < l.data.size()) {
    std::vector<int64_t> first(static_cast<size_t>(o.limit));
    for (int64_t i = 0; i < o.limit; ++i) first[size_t(i)] = i;
    l.data = io::subset(l.data, first);
  }
  const Shape& s = train_full.images.shape();
  l.model = train::build_model(l.config, s[1], train_full.num_classes, s[2]);
  train::load_weights(o.checkpoint, *l.model);
  l.norm = train::default_normalization(l.config.data, train_full);
  return l;
}

void run_errors(CLI::App* cmd, const CheckpointOptions& o) {
  Loaded l = load_model_and_data(cmd, o, o.split);
  const std::string out = o.out.empty() ? "runs/inspect/errors" : o.out;
  fs::create_directories(out);
  std::vector<std::string> written;
  train::Predictions p = train::predict(*l.model, l.data, l.norm, o.batch, false);
  const int64_t K = l.data.num_classes;
  const std::vector<std::string> names = class_names(l.data);
  std::vector<int64_t> cm = inspect::confusion_matrix(p.labels, p.predicted, K);
  int64_t correct = 0;
  double loss_sum = 0;
  for (size_t i = 0; i < p.labels.size(); ++i) correct += p.labels[i] == p.predicted[i], loss_sum += p.loss[i];
  const double accuracy = double(correct) / double(p.labels.size()), loss = loss_sum / double(p.labels.size());

  std::printf("%s on %s: accuracy %.2f%%, loss %.4f (%lld images)\n\n", o.checkpoint.c_str(),
              l.data.description.c_str(), 100 * accuracy, loss, (long long)p.labels.size());
  std::printf("%s\n", inspect::confusion_table(cm, names).c_str());
  auto pairs = inspect::most_confused_pairs(cm, K, o.pairs);
  std::printf("most confused pairs:\n");
  for (const auto& pair : pairs)
    std::printf("  %-14s <-> %-14s %5lld  (%lld as %s, %lld as %s; %.1f%% of their images)\n",
                names[size_t(pair.a)].c_str(), names[size_t(pair.b)].c_str(), (long long)pair.total(),
                (long long)pair.a_as_b, names[size_t(pair.b)].c_str(), (long long)pair.b_as_a,
                names[size_t(pair.a)].c_str(), 100 * pair.rate);

  // Tables: the matrix, every prediction, the worst mispredictions; and errors.json with it all.
  std::ostringstream cm_csv, pred_csv, worst_csv;
  cm_csv << "true\\predicted";
  for (const auto& n : names) cm_csv << ',' << csv_field(n);
  cm_csv << '\n';
  for (int64_t i = 0; i < K; ++i) {
    cm_csv << csv_field(names[size_t(i)]);
    for (int64_t j = 0; j < K; ++j) cm_csv << ',' << cm[size_t(i * K + j)];
    cm_csv << '\n';
  }
  pred_csv.precision(9);
  pred_csv << "index,label,predicted,confidence,label_probability,loss\n";
  for (size_t i = 0; i < p.labels.size(); ++i)
    pred_csv << i << ',' << p.labels[i] << ',' << p.predicted[i] << ',' << p.confidence[i] << ','
             << p.label_probability[i] << ',' << p.loss[i] << '\n';
  std::vector<int64_t> worst = inspect::worst_mispredictions(p.labels, p.predicted, p.loss, int(o.top));
  worst_csv.precision(9);
  worst_csv << "rank,index,label,label_name,predicted,predicted_name,confidence,loss\n";
  std::vector<inspect::GridTile> tiles;
  for (size_t r = 0; r < worst.size(); ++r) {
    const size_t i = size_t(worst[r]);
    worst_csv << r + 1 << ',' << i << ',' << p.labels[i] << ',' << csv_field(names[size_t(p.labels[i])]) << ','
              << p.predicted[i] << ',' << csv_field(names[size_t(p.predicted[i])]) << ',' << p.confidence[i] << ','
              << p.loss[i] << '\n';
    tiles.push_back({int64_t(i),
                     {"T:" + names[size_t(p.labels[i])], "P:" + names[size_t(p.predicted[i])],
                      percent(p.confidence[i]) + " #" + std::to_string(i)},
                     true,
                     inspect::kRed});
  }
  save_text(cm_csv.str(), out + "/confusion.csv", written);
  save_text(pred_csv.str(), out + "/predictions.csv", written);
  save_text(worst_csv.str(), out + "/worst.csv", written);
  save(inspect::confusion_heatmap("CONFUSION MATRIX, ACCURACY " + percent(accuracy), cm, names), out + "/confusion.png",
       written);
  if (!tiles.empty()) {
    save(inspect::image_grid(
             l.data.images, inspect::in_rows(tiles, 8),
             {.zoom = o.zoom, .title = "WORST MISPREDICTIONS (T: TRUE, P: PREDICTED, CONFIDENCE)", .row_labels = {}}),
         out + "/worst.png", written);
  }
  // Examples of each most-confused pair, one row per direction, highest loss first.
  std::vector<std::vector<inspect::GridTile>> pair_rows;
  std::vector<std::string> pair_labels;
  for (const auto& pair : pairs) {
    for (auto [t, q] : {std::pair{pair.a, pair.b}, std::pair{pair.b, pair.a}}) {
      std::vector<int64_t> wrong;
      for (size_t i = 0; i < p.labels.size(); ++i)
        if (p.labels[i] == t && p.predicted[i] == q) wrong.push_back(int64_t(i));
      if (wrong.empty()) continue;
      std::vector<double> losses;
      for (int64_t i : wrong) losses.push_back(p.loss[size_t(i)]);
      std::vector<inspect::GridTile> row;
      for (int64_t j : inspect::top_k(losses, 8))
        row.push_back({wrong[size_t(j)], {percent(p.confidence[size_t(wrong[size_t(j)])])}, true, inspect::kRed});
      pair_rows.push_back(row);
      pair_labels.push_back(names[size_t(t)] + " AS " + names[size_t(q)]);
    }
  }
  if (!pair_rows.empty()) {
    save(inspect::image_grid(
             l.data.images, pair_rows,
             {.zoom = o.zoom, .title = "MOST CONFUSED PAIRS (TRUE AS PREDICTED)", .row_labels = pair_labels}),
         out + "/confused_pairs.png", written);
  }
  json j{{"checkpoint", o.checkpoint}, {"data", l.data.description}, {"split", o.split},
         {"images", p.labels.size()},  {"accuracy", accuracy},       {"loss", loss},
         {"class_names", names},       {"confusion", json::array()}, {"confused_pairs", json::array()},
         {"classes", json::array()}};
  for (int64_t i = 0; i < K; ++i)
    j["confusion"].push_back(std::vector<int64_t>(cm.begin() + i * K, cm.begin() + (i + 1) * K));
  for (const auto& pair : pairs)
    j["confused_pairs"].push_back({{"a", pair.a},
                                   {"b", pair.b},
                                   {"a_name", names[size_t(pair.a)]},
                                   {"b_name", names[size_t(pair.b)]},
                                   {"a_as_b", pair.a_as_b},
                                   {"b_as_a", pair.b_as_a},
                                   {"total", pair.total()},
                                   {"rate", pair.rate}});
  auto scores = inspect::class_scores(cm, K);
  for (int64_t k = 0; k < K; ++k)
    j["classes"].push_back({{"name", names[size_t(k)]},
                            {"support", scores[size_t(k)].support},
                            {"precision", scores[size_t(k)].precision},
                            {"recall", scores[size_t(k)].recall}});
  save_text(j.dump(2) + "\n", out + "/errors.json", written);
  print_written(written);
}

// ---------------- inspect outliers ----------------

void run_outliers(CLI::App* cmd, const CheckpointOptions& o) {
  Loaded l = load_model_and_data(cmd, o, "train");
  const std::string out = o.out.empty() ? "runs/inspect/outliers" : o.out;
  fs::create_directories(out);
  std::vector<std::string> written;
  const std::vector<std::string> names = class_names(l.data);
  train::Predictions p = train::predict(*l.model, l.data, l.norm, o.batch, true);

  inspect::ImageMetadata meta = inspect::image_metadata(l.data.images, l.data.source_heights, l.data.source_widths);
  std::vector<inspect::MetadataOutlier> meta_out = inspect::metadata_outliers(meta);
  std::vector<double> meta_score,
      centroid_raw = inspect::centroid_distances(p.embeddings, p.labels, l.data.num_classes),
      knn_raw = inspect::knn_distances(p.embeddings, p.labels, o.k);
  for (const auto& m : meta_out) meta_score.push_back(m.max_abs_z);
  std::vector<double> centroid = inspect::relative_to_class_median(centroid_raw, p.labels),
                      knn = inspect::relative_to_class_median(knn_raw, p.labels);
  inspect::OutlierScores s = inspect::combine_outlier_scores({"metadata", "centroid", "knn", "confidence"},
                                                             {meta_score, centroid, knn, p.loss});

  auto caption = [&](int64_t i) {
    return std::vector<std::string>{"#" + std::to_string(i), names[size_t(p.labels[size_t(i)])],
                                    "P:" + names[size_t(p.predicted[size_t(i)])]};
  };
  auto grid = [&](const std::vector<int64_t>& top, const std::string& title, const std::string& file) {
    std::vector<inspect::GridTile> tiles;
    for (int64_t i : top) {
      bool wrong = p.predicted[size_t(i)] != p.labels[size_t(i)];
      tiles.push_back({i, caption(i), wrong, inspect::kRed});
    }
    save(inspect::image_grid(l.data.images, inspect::in_rows(tiles, 8),
                             {.zoom = o.zoom, .title = title, .row_labels = {}}),
         out + "/" + file, written);
  };
  std::vector<int64_t> top = inspect::top_k(s.combined, o.top);
  grid(top, "OUTLIERS, COMBINED (RED: PREDICTED ANOTHER CLASS)", "outliers.png");
  grid(inspect::top_k(meta_score, o.top), "OUTLIERS BY METADATA Z-SCORE", "outliers_metadata.png");
  grid(inspect::top_k(centroid, o.top), "OUTLIERS BY DISTANCE TO CLASS CENTROID", "outliers_centroid.png");
  grid(inspect::top_k(knn, o.top), "OUTLIERS BY DISTANCE TO " + std::to_string(o.k) + " NEAREST OF THEIR CLASS",
       "outliers_knn.png");
  grid(inspect::top_k(p.loss, o.top), "OUTLIERS BY LOW CONFIDENCE IN THEIR LABEL", "outliers_confidence.png");

  // scores.csv: every image; outliers.csv: the top --top by the combined score (train --exclude-list takes it).
  auto row = [&](std::ostringstream& csv, int64_t i) {
    const size_t u = size_t(i);
    csv << i << ',' << p.labels[u] << ',' << csv_field(names[size_t(p.labels[u])]) << ',' << s.combined[u] << ','
        << meta_score[u] << ',' << (meta_out[u].metric >= 0 ? meta.names[size_t(meta_out[u].metric)] : "none") << ','
        << centroid_raw[u] << ',' << centroid[u] << ',' << knn_raw[u] << ',' << knn[u] << ',' << p.label_probability[u]
        << ',' << p.loss[u] << ',' << p.predicted[u] << '\n';
  };
  const char* header =
      "index,label,label_name,combined,metadata_max_abs_z,metadata_metric,centroid_distance,centroid_relative,"
      "knn_distance,knn_relative,label_probability,loss,predicted\n";
  std::ostringstream all, top_csv;
  all.precision(9), top_csv.precision(9);
  all << header, top_csv << header;
  for (int64_t i = 0; i < int64_t(p.labels.size()); ++i) row(all, i);
  for (int64_t i : top) row(top_csv, i);
  save_text(all.str(), out + "/scores.csv", written);
  save_text(top_csv.str(), out + "/outliers.csv", written);
  json j{{"checkpoint", o.checkpoint},
         {"data", l.data.description},
         {"images", p.labels.size()},
         {"embedding_module", p.embedding_module},
         {"embedding_dim", p.embeddings.shape()[1]},
         {"k", o.k},
         {"top", top},
         {"criteria", s.criteria}};
  save_text(j.dump(2) + "\n", out + "/outliers.json", written);

  std::printf("%lld training images ranked (embedding: input of Linear '%s', %lld dims; k = %lld)\n",
              (long long)p.labels.size(), p.embedding_module.c_str(), (long long)p.embeddings.shape()[1],
              (long long)o.k);
  std::printf("%6s %8s %-12s %8s %8s %8s %8s %8s  %s\n", "rank", "index", "label", "combined", "meta|z|", "centroid",
              "knn", "p(label)", "predicted");
  for (size_t r = 0; r < std::min<size_t>(top.size(), 15); ++r) {
    const size_t u = size_t(top[r]);
    std::printf("%6zu %8zu %-12s %8.3f %8.2f %8.2f %8.2f %8.3f  %s\n", r + 1, u, names[size_t(p.labels[u])].c_str(),
                s.combined[u], meta_score[u], centroid[u], knn[u], p.label_probability[u],
                names[size_t(p.predicted[u])].c_str());
  }
  std::printf("leave them out: gradscope train --exclude-list %s/outliers.csv ...\n", out.c_str());
  print_written(written);
}

void add_checkpoint_flags(CLI::App* sub, CheckpointOptions& o) {
  add_model_data_flags(sub, o.config);
  sub->add_option("--checkpoint", o.checkpoint,
                  "trained weights: a checkpoint (its config supplies the model and data) "
                  "or a state_dict .safetensors")
      ->required();
  sub->add_option("--config", o.config_file, "a run's config.json for model and data (default: the checkpoint's)");
  sub->add_option("--batch", o.batch, "images per forward pass")->capture_default_str();
  sub->add_option("--top", o.top, "how many images the grids and top lists show")->capture_default_str();
  sub->add_option("--zoom", o.zoom, "pixels per image pixel in the grids")->capture_default_str();
}

void add_inspect(CLI::App& app) {
  CLI::App* cmd =
      app.add_subcommand("inspect", "look at the data and at what a model gets wrong: PNG grids, charts, CSV/JSON");
  cmd->require_subcommand(1);

  auto data = std::make_shared<DataOptions>();
  CLI::App* data_cmd = cmd->add_subcommand(
      "data",
      "samples per class as the network sees them (after augmentation and normalisation), per-image metadata "
      "(size, aspect, brightness, contrast) with histograms, metadata.csv and metadata_summary.json");
  data_cmd
      ->add_option("--data", data->config.data,
                   "data set: fashion-mnist | mnist:<dir> | idx:<dir> | cifar10:<dir> | folder:<dir>[:HxW]")
      ->capture_default_str();
  data_cmd
      ->add_option("--augment", data->config.augment,
                   "augmentation to show: none | comma list of crop:P, flip, rotate:DEG, jitter:S")
      ->capture_default_str();
  data_cmd->add_option("--seed", data->config.seed, "seed of the augmentation draws (as train --seed)")
      ->capture_default_str();
  data_cmd->add_option("--threads", data->config.threads, "CPU threads (0: OMP_NUM_THREADS or all cores)")
      ->capture_default_str();
  data_cmd->add_option("--config", data->config_file,
                       "a run's config.json (data, augment, seed); flags given here override it");
  data_cmd->add_option("--split", data->split, "train | test")
      ->check(CLI::IsMember({"train", "test"}))
      ->capture_default_str();
  data_cmd->add_option("--limit", data->limit, "only the first N images of the split (0: all)")->capture_default_str();
  data_cmd->add_option("--per-class", data->per_class, "images per class in samples.png")->capture_default_str();
  data_cmd->add_option("--views", data->views, "augmented views per image in augmentations.png")->capture_default_str();
  data_cmd->add_option("--epoch", data->epoch, "the epoch whose augmentation draws samples.png shows")
      ->capture_default_str();
  data_cmd->add_option("--bins", data->bins, "histogram bins")->capture_default_str();
  data_cmd->add_option("--zoom", data->zoom, "pixels per image pixel in the grids")->capture_default_str();
  data_cmd->add_option("--out", data->out, "output directory")->capture_default_str();

  auto errors = std::make_shared<CheckpointOptions>();
  CLI::App* errors_cmd = cmd->add_subcommand(
      "errors",
      "confusion matrix (printed, confusion.png/.csv), most-confused pairs, the worst mispredictions "
      "(worst.png/.csv), every prediction (predictions.csv) and errors.json");
  add_checkpoint_flags(errors_cmd, *errors);
  errors_cmd->add_option("--split", errors->split, "test | train")
      ->check(CLI::IsMember({"test", "train"}))
      ->capture_default_str();
  errors_cmd->add_option("--limit", errors->limit, "only the first N images of the split (0: all)")
      ->capture_default_str();
  errors_cmd->add_option("--pairs", errors->pairs, "most-confused pairs to list and draw")->capture_default_str();
  errors_cmd->add_option("--out", errors->out, "output directory (default runs/inspect/errors)");

  auto outliers = std::make_shared<CheckpointOptions>();
  CLI::App* outliers_cmd = cmd->add_subcommand(
      "outliers",
      "rank training images by metadata z-score, distance to their class centroid and k nearest neighbours "
      "in the embedding (input of the last Linear), and low confidence in their label; grids, scores.csv, "
      "outliers.csv (for train --exclude-list)");
  add_checkpoint_flags(outliers_cmd, *outliers);
  outliers_cmd->add_option("--limit", outliers->limit, "only the first N training images (file order; 0: all)")
      ->capture_default_str();
  outliers_cmd->add_option("--k", outliers->k, "neighbours for the kNN distance")->capture_default_str();
  outliers_cmd->add_option("--out", outliers->out, "output directory (default runs/inspect/outliers)");

  register_action(cmd, [data_cmd, errors_cmd, outliers_cmd, data, errors, outliers] {
    if (data_cmd->parsed()) run_data(data_cmd, *data);
    if (errors_cmd->parsed()) run_errors(errors_cmd, *errors);
    if (outliers_cmd->parsed()) run_outliers(outliers_cmd, *outliers);
  });
}

}  // namespace

const CommandRegistration register_inspect{55, add_inspect};

}  // namespace gs::cli
