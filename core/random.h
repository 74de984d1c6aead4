// A small, seeded, deterministic PRNG for core state machines (SplitMix64).
//
// Core never uses a hardware random device or a global generator: each state machine owns one Rng
// seeded from its options, so the same seed gives the same draws on every platform.
#ifndef CHATLAB_CORE_RANDOM_H_
#define CHATLAB_CORE_RANDOM_H_

#include <cassert>
#include <cstdint>

namespace chatlab {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound). REQUIRES: bound > 0. (Modulo bias is below 2^-40 for our bounds.)
  uint64_t Uniform(uint64_t bound) {
    assert(bound > 0);
    return Next() % bound;
  }
  // Uniform in [0, 1).
  double UniformDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // True with probability p.
  bool Bernoulli(double p) { return UniformDouble() < p; }

 private:
  uint64_t state_;  // the whole generator state
};

// Mixes two values into a seed (for deriving per-node seeds from a run seed).
inline uint64_t MixSeed(uint64_t a, uint64_t b) {
  Rng r(a ^ (b * 0x9e3779b97f4a7c15ULL));
  return r.Next();
}

}  // namespace chatlab

#endif  // CHATLAB_CORE_RANDOM_H_
