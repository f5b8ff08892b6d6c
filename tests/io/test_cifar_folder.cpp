// CIFAR-10 binary batches and image folders, from small synthetic files written into a temp dir
// (image files by stb_image_write): values, labels, class names, resizing and every error case.
#include <stb/stb_image_write.h>

#include <filesystem>

#include "io/dataset.h"
#include "io_test_util.h"
#include "tests/helpers.h"

namespace gs::io {
namespace {

using test::TempDir;
namespace fs = std::filesystem;

// `count` records: label (first + r) % 10, pixel k of record r = (r * 7 + k) % 256.
std::string cifar_records(int count, int first) {
  std::string out;
  for (int r = 0; r < count; ++r) {
    out += static_cast<char>((first + r) % 10);
    for (int k = 0; k < 3072; ++k) out += static_cast<char>((r * 7 + k) % 256);
  }
  return out;
}

TEST(Cifar10, TrainAndTestBatches) {
  TempDir dir;
  fs::create_directory(dir.file("cifar-10-batches-bin"));
  auto file = [&](const std::string& n) { return dir.file("cifar-10-batches-bin/" + n); };
  for (int b = 1; b <= 5; ++b) test::write_bytes(file("data_batch_" + std::to_string(b) + ".bin"), cifar_records(2, b));
  test::write_bytes(file("test_batch.bin"), cifar_records(3, 0));
  Dataset train = load_cifar10(dir.path(), true);  // finds the cifar-10-batches-bin sub-folder
  EXPECT_EQ(shape_str(train.images.shape()), "[10,3,32,32]");
  EXPECT_EQ(train.labels.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 2, 3, 3, 4, 4, 5, 5, 6}));
  Dataset test = load_dataset("cifar10:" + file(""), false);
  EXPECT_EQ(test.size(), 3);
  auto px = test.images.to_vector<float>();
  // Record 2, channel 1 (green), row 3, column 5 -> byte k = 1024 + 3 * 32 + 5.
  int k = 1024 + 3 * 32 + 5;
  EXPECT_EQ(px[2 * 3072 + k], static_cast<float>((2 * 7 + k) % 256) / 255.0f);
  EXPECT_EQ(test.class_names[0], "airplane");
  EXPECT_EQ(test.num_classes, 10);

  std::string names;
  for (int c = 0; c < 10; ++c) names += "class" + std::to_string(c) + "\n";
  test::write_bytes(file("batches.meta.txt"), names + "\n\n");
  EXPECT_EQ(load_cifar10(dir.path(), false).class_names[9], "class9");
  test::write_bytes(file("batches.meta.txt"), "a\nb\n");
  EXPECT_THROW_MSG(load_cifar10(dir.path(), false), "lists 2 class names");
}

TEST(Cifar10, ErrorsNameTheFile) {
  TempDir dir;
  test::write_bytes(dir.file("test_batch.bin"), cifar_records(2, 0).substr(0, 5000));
  EXPECT_THROW_MSG(load_cifar10(dir.path(), false), dir.file("test_batch.bin"));
  EXPECT_THROW_MSG(load_cifar10(dir.path(), false), "not a whole number of 3073-byte records");
  std::string bad = cifar_records(1, 0);
  bad[0] = 10;
  test::write_bytes(dir.file("test_batch.bin"), bad);
  EXPECT_THROW_MSG(load_cifar10(dir.path(), false), "label 10");
  EXPECT_THROW_MSG(load_cifar10(dir.path(), true), dir.file("data_batch_1.bin") + " not found");
}

// dir/<class>/<name>: a w x h RGB image whose pixel (y, x, c) = 40 * c + 10 * y + x + base.
void write_image(const std::string& path, int w, int h, int base, bool bmp) {
  std::vector<unsigned char> px(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) px[(y * w + x) * 3 + c] = static_cast<unsigned char>(40 * c + 10 * y + x + base);
  int ok =
      bmp ? stbi_write_bmp(path.c_str(), w, h, 3, px.data()) : stbi_write_png(path.c_str(), w, h, 3, px.data(), w * 3);
  ASSERT_TRUE(ok) << path;
}

void make_folder(const std::string& root) {
  fs::create_directories(root + "/dog");
  fs::create_directories(root + "/cat");
  write_image(root + "/dog/b.png", 4, 3, 1, false);
  write_image(root + "/dog/a.bmp", 4, 3, 2, true);
  write_image(root + "/cat/z.PNG", 4, 3, 3, false);
  test::write_bytes(root + "/cat/notes.txt", "ignored");
  test::write_bytes(root + "/.hidden", "ignored");
}

TEST(ImageFolder, LoadsPngAndBmpWithSortedClasses) {
  TempDir dir;
  make_folder(dir.path());
  Dataset d = load_image_folder(dir.path(), 0, 0);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(d.num_classes, 2);
  EXPECT_EQ(shape_str(d.images.shape()), "[3,3,3,4]");
  EXPECT_EQ(d.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 1}));  // cat/z, dog/a.bmp, dog/b.png
  auto px = d.images.to_vector<float>();
  int bases[3] = {3, 2, 1};
  for (int i = 0; i < 3; ++i)
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 4; ++x)
          ASSERT_EQ(px[((i * 3 + c) * 3 + y) * 4 + x], static_cast<float>(40 * c + 10 * y + x + bases[i]) / 255.0f)
              << "image " << i << " c " << c << " y " << y << " x " << x;
}

TEST(ImageFolder, ResizeGrayscaleAndSpecs) {
  TempDir dir;
  make_folder(dir.path());
  Dataset small = load_image_folder(dir.path(), 2, 2, 1);
  EXPECT_EQ(shape_str(small.images.shape()), "[3,1,2,2]");
  for (float v : small.images.to_vector<float>()) {
    EXPECT_GE(v, 0.0f);
    EXPECT_LE(v, 1.0f);
  }
  EXPECT_EQ(shape_str(load_dataset("folder:" + dir.path() + ":6x8", true).images.shape()), "[3,3,6,8]");
  EXPECT_EQ(shape_str(load_dataset("folder:" + dir.path() + ":6x8x1", true).images.shape()), "[3,1,6,8]");
  EXPECT_EQ(load_dataset("folder:" + dir.path(), false).size(), 3) << "no train/test split: the whole folder";
  // JPEG is lossy: check it decodes to the right place, near the written colour.
  std::vector<unsigned char> orange(8 * 8 * 3);
  for (size_t i = 0; i < orange.size(); ++i) orange[i] = i % 3 == 0 ? 240 : i % 3 == 1 ? 120 : 10;
  ASSERT_TRUE(stbi_write_jpg((dir.path() + "/dog/c.jpg").c_str(), 8, 8, 3, orange.data(), 95));
  Dataset with_jpeg = load_image_folder(dir.path(), 3, 4);
  ASSERT_EQ(with_jpeg.size(), 4);
  EXPECT_NEAR(with_jpeg.images.to_vector<float>()[3 * 36 + 0], 240 / 255.0, 0.05);      // c.jpg red
  EXPECT_NEAR(with_jpeg.images.to_vector<float>()[3 * 36 + 2 * 12], 10 / 255.0, 0.05);  // c.jpg blue
  EXPECT_THROW_MSG(load_dataset("folder:" + dir.path() + ":6by8", true), "bad image size '6by8'");

  TempDir split;
  make_folder(split.file("train"));
  fs::create_directories(split.file("val/cat"));
  write_image(split.file("val/cat/q.png"), 4, 3, 0, false);
  EXPECT_EQ(load_dataset("folder:" + split.path(), true).size(), 3);
  EXPECT_EQ(load_dataset("folder:" + split.path(), false).size(), 1);
}

// A test folder's labels are the training classes' indices by name, whatever classes it lacks;
// at 0x0 its images take the training images' size; a class it has and train lacks is an error.
TEST(ImageFolder, TestSplitUsesTheTrainingClassesAndSize) {
  TempDir split;
  make_folder(split.file("train"));  // cat, dog; 4x3 images
  fs::create_directories(split.file("test/dog"));
  write_image(split.file("test/dog/q.png"), 8, 6, 0, false);
  Dataset test = load_dataset("folder:" + split.path(), false);
  EXPECT_EQ(test.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(test.num_classes, 2);
  EXPECT_EQ(test.labels.to_vector<int64_t>(), (std::vector<int64_t>{1}));  // dog, not its own index 0
  EXPECT_EQ(shape_str(test.images.shape()), "[1,3,3,4]");
  EXPECT_EQ(shape_str(load_dataset("folder:" + split.path() + ":0x0", false).images.shape()), "[1,3,3,4]");
  fs::create_directories(split.file("test/bird"));
  write_image(split.file("test/bird/r.png"), 4, 3, 0, false);
  EXPECT_THROW_MSG(load_dataset("folder:" + split.path(), false),
                   "class folder " + split.file("test/bird") + " is not one of the training classes");
}

TEST(ImageFolder, Errors) {
  TempDir dir;
  make_folder(dir.path());
  std::string corrupt = dir.path() + "/cat/broken.png";
  test::write_bytes(corrupt, "\x89PNG\r\n\x1a\n this is not really a png");
  EXPECT_THROW_MSG(load_image_folder(dir.path(), 0, 0), "cannot read image " + corrupt);
  EXPECT_THROW_MSG(load_image_folder(dir.file("none"), 0, 0), "is not a directory");
  EXPECT_THROW_MSG(load_image_folder(dir.path(), 0, 0, 2), "channels must be 1, 3 or 4");
  EXPECT_THROW_MSG(load_image_folder(dir.path(), 5, 0), "give both height and width");
  TempDir flat;
  test::write_bytes(flat.file("x.png"), "");
  EXPECT_THROW_MSG(load_image_folder(flat.path(), 0, 0), "no class sub-folders");
  fs::create_directory(flat.file("empty_class"));
  EXPECT_THROW_MSG(load_image_folder(flat.path(), 0, 0), "no PNG/JPEG/BMP images");
  // An empty class folder beside full ones: a class the model would be built for and never see.
  fs::create_directory(dir.file("zebra"));
  fs::remove(corrupt);
  EXPECT_THROW_MSG(load_image_folder(dir.path(), 0, 0),
                   "class folder " + dir.file("zebra") + " has no PNG/JPEG/BMP images");
  EXPECT_THROW_MSG(load_dataset("folder:" + dir.path() + ":5000x32", true), "at most 4096");
}

}  // namespace
}  // namespace gs::io
