// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator, so element i of a dropout mask is a pure function of (seed, i) and
// the GPU mask is reproducible and checkable on the CPU. __host__ __device__; tested against the
// Random123 known-answer vectors in tests/kernels/test_cuda_philox.cpp.
#pragma once
#include "kernels/cuda/hd.h"

namespace gs::kernels::cuda {

struct Philox4 {
  uint32_t v[4];
};

GS_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t product = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(product >> 32);
  lo = static_cast<uint32_t>(product);
}

GS_HD Philox4 philox4x32_10(Philox4 ctr, uint32_t key0, uint32_t key1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kM0, ctr.v[0], hi0, lo0);
    philox_mulhilo(kM1, ctr.v[2], hi1, lo1);
    ctr = Philox4{{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
    key0 += kW0;
    key1 += kW1;
  }
  return ctr;
}

// Uniform in [0, 1) from 32 random bits (24 significant bits, exact in float).
GS_HD float philox_uniform(uint32_t bits) { return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f); }

// Dropout mask of element i: 0 with probability p, else keep_scale. The counter is
// (i / 4, offset) and the key the seed, so every element draws its own lane of one block.
GS_HD float dropout_mask_element(uint64_t seed, uint64_t offset, int64_t i, float p, float keep_scale) {
  uint64_t block = static_cast<uint64_t>(i) / 4;
  Philox4 ctr{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), static_cast<uint32_t>(offset),
               static_cast<uint32_t>(offset >> 32)}};
  Philox4 out = philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  return philox_uniform(out.v[i % 4]) < p ? 0.0f : keep_scale;
}

}  // namespace gs::kernels::cuda
