// In-memory image classification datasets: IDX (MNIST, Fashion-MNIST), CIFAR-10 binary batches and
// image folders, plus deterministic stratified splits and subsets.
//
//   gs::io::Dataset train = gs::io::load_dataset("fashion-mnist", /*train=*/true);   // images f32 [60000,1,28,28]
//   auto [fit, val] = gs::io::split_validation(train, 0.1, /*seed=*/1);            // stratified by class
//   gs::io::Dataset few = gs::io::stratified_subset(train, 1000, /*seed=*/1);
//
// Images are f32 (N, C, H, W) in [0, 1] (u8 / 255); normalisation is a transform (io/transforms.h).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace gs::io {

struct Dataset {
  Tensor images;  // f32 (N, C, H, W) in [0, 1], contiguous
  Tensor labels;  // i64 (N)
  int64_t num_classes = 0;
  std::vector<std::string> class_names;
  std::string description;  // "fashion-mnist train (60000 images, /usr/share/datasets/fashion-mnist)"
  // Image folders: each image's size in its file, before resizing to the common size (subsets keep
  // them). Empty when every image is stored at its own size (IDX, CIFAR-10).
  std::vector<int64_t> source_heights, source_widths;
  // load_dataset(spec, train=false) found no separate test set (idx:<images>,<labels>, a folder without
  // train/) and returned the training images: a "test" score on it is a training score.
  bool test_is_train = false;
  int64_t size() const { return labels.defined() ? labels.numel() : 0; }
  Shape image_shape() const;                  // (C, H, W)
  std::vector<int64_t> class_counts() const;  // examples per class, num_classes entries
};

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr double kFashionMnistMean = 0.2860;  // of x/255 over the training set (DESIGN.md)
inline constexpr double kFashionMnistStd = 0.3530;

// IDX files (gzip or raw, detected by the gzip magic): images u8 (N, H, W), labels u8 (N).
// Errors name the file: bad magic, wrong element type, truncated data, count mismatch.
Dataset load_idx(const std::string& images_path, const std::string& labels_path);
// train-images-idx3-ubyte(.gz) / train-labels-idx1-ubyte(.gz), or t10k-* for the test set.
Dataset load_fashion_mnist(const std::string& dir = kFashionMnistDir, bool train = true);
Dataset load_mnist_format(const std::string& dir, bool train);  // same files, class names "0".."9"
// data_batch_1..5.bin (train) or test_batch.bin: records of 1 label byte + 3072 bytes (3, 32, 32).
// Looks in dir and in dir/cifar-10-batches-bin. Class names from batches.meta.txt when present.
Dataset load_cifar10(const std::string& dir, bool train);
// One sub-folder per class (sorted by name); PNG/JPEG/BMP/GIF/TGA/PPM/PGM read by stb_image, converted
// to `channels` (1, 3 or 4) and resized to height x width (0 x 0: the first image's size).
// Files with other extensions are ignored; an unreadable image is an error naming the file.
// A class folder without images is an error, as in torchvision. With `classes` (a test split's
// training classes) the labels index those names, and a folder not among them is an error.
Dataset load_image_folder(const std::string& dir, int64_t height, int64_t width, int64_t channels = 3,
                          const std::vector<std::string>& classes = {});
// The class names (sub-folders, sorted) of an image folder, without reading an image.
std::vector<std::string> image_folder_classes(const std::string& dir);
// (height, width) of the image that sets a folder's size at 0x0: the first of its first class.
std::pair<int64_t, int64_t> image_folder_first_size(const std::string& dir);

// "fashion-mnist[:<dir>]" | "mnist:<dir>" | "idx:<dir>" | "idx:<images>,<labels>" | "cifar10:<dir>" |
// "folder:<dir>[:HxW[xC]]". A folder with train/ and test/ (or val/) sub-folders is split by `train`;
// otherwise the whole folder is returned for both, and the test set has test_is_train set.
Dataset load_dataset(const std::string& spec, bool train);

// Stratified by class and deterministic for a seed: each class gives round(fraction * count) examples
// to the validation set. Both halves keep the original order. Returns {train, validation}.
std::pair<Dataset, Dataset> split_validation(const Dataset& d, double fraction, uint64_t seed);
// n examples with class proportions kept (largest remainder), original order kept; n >= size: a copy.
Dataset stratified_subset(const Dataset& d, int64_t n, uint64_t seed);
Dataset subset(const Dataset& d, const std::vector<int64_t>& indices);

// Decompressed contents of a file that may be gzip (by its magic bytes) or raw. Errors name the file.
std::string read_maybe_gzip(const std::string& path);

}  // namespace gs::io
