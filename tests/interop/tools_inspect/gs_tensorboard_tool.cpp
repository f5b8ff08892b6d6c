// gs_tensorboard_tool <dir>: writes one event file with known scalars, a histogram of a known
// tensor (with NaN and Inf in it) and a known 2x3 RGB image, for test_tensorboard.py to read back.
#include <cmath>
#include <cstdio>

#include "inspect/probes.h"
#include "io/tensorboard.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gs_tensorboard_tool <dir>\n");
    return 2;
  }
  try {
    gs::io::EventWriter tb(argv[1]);
    for (int step = 0; step < 5; ++step) tb.add_scalar("test/scalar", 0.25 * step - 1, step);
    tb.add_scalar("test/other", 1234.5, 7);
    gs::Tensor t = gs::from_vector<float>({-3, -0.5f, 0, 0, 0.75f, 1, 1.5f, 100000, NAN, INFINITY}, {10});
    tb.add_histogram("test/histogram", gs::inspect::histogram_summary(gs::inspect::tensor_stats(t)), 3);
    std::vector<uint8_t> pixels(2 * 3 * 3);
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = uint8_t(i * 10);
    tb.add_image("test/image", pixels, 2, 3, 3, 4);
    std::printf("%s\n", tb.path().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
