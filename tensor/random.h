// Seeded random numbers: xoshiro256** with a small state that checkpoints save and restore.
// The default generator is global, explicit state: not thread-safe; give worker threads their own.
#pragma once
#include <array>
#include <cstdint>

namespace gs {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) { manual_seed(seed); }
  void manual_seed(uint64_t seed);
  uint64_t next_u64();
  double uniform();        // [0, 1)
  double normal();         // N(0, 1), Box-Muller
  int64_t randint(int64_t low, int64_t high);  // [low, high)
  std::array<uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<uint64_t, 4>& s) { s_ = s; }

 private:
  std::array<uint64_t, 4> s_{};
};

Generator& default_generator();
void manual_seed(uint64_t seed);  // seeds the default generator

}  // namespace gs
