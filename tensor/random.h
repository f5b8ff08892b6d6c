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

// Data-parallel processes keep the default generator in step (the same seed and the same draws,
// so rank 0's saved state resumes every rank), yet each must draw its own dropout masks: a
// nonzero stream (the rank) makes dropout on the default generator take its mask from a
// generator keyed by the call's draw and the stream, while the default generator advances as on
// stream 0. One process: 0.
void set_rng_stream(uint64_t stream);
uint64_t rng_stream();
// A generator for stream `stream`'s share of one draw `seed` (a splitmix of both).
uint64_t stream_seed(uint64_t seed, uint64_t stream);

}  // namespace gs
