// Dropout in one pass over the data (models/dropout.py), with the masks of its Python code, bit for
// bit: the same draws of torch's default generator, read the same way.
//
// Why: the Python code makes five passes over a tensor (random bits, compare, to float, scale,
// multiply) and keeps a float mask for the backward pass: a few per cent of an ssl training step,
// most of it on the attention weights, the largest tensor dropped out. Here the forward pass draws
// the bits, then compares and scales in one loop, and keeps a one-byte mask; the backward pass is
// one loop too.
//
// The masks: the Python code fills an int64 tensor with torch's random_ over the full 64-bit range
// (one random64() of the default CPU generator per word, in order), views it as int16 and keeps an
// element when its integer is >= dropped - 32768. Element i is thus the (i % 4)-th 16-bit piece,
// little-endian, of word i / 4; as an unsigned level (the int16 with its sign bit flipped) it is
// kept when level >= dropped. Kept elements are scaled by 65536 / (65536 - dropped).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstring>
#include <mutex>
#include <vector>

namespace {

constexpr int64_t kLevels = 1 << 16;

// The element loops, as functions of their own with restrict pointers and integer 0/1 masks:
// written inline in a parallel_for lambda, or with bool arithmetic, the compiler emitted scalar
// code (inline: with a branch per element, 5-9x slower); these are vectorised (~0.1 ms per
// million elements each on 2 threads).
void drop(const uint16_t* __restrict__ level, const float* __restrict__ in,
          float* __restrict__ out, bool* __restrict__ keep, int64_t count, uint32_t threshold,
          float scale) {
  auto* __restrict__ keep_bytes = reinterpret_cast<uint8_t*>(keep);
  const int32_t lowest_kept = int32_t(threshold);
  for (int64_t j = 0; j < count; ++j) {
    const int32_t kept = int32_t(level[j] ^ 0x8000u) >= lowest_kept;
    keep_bytes[j] = uint8_t(kept);
    out[j] = in[j] * (float(kept) * scale);  // as x * (mask * scale): a dropped NaN stays NaN
  }
}

void pass_kept(const float* __restrict__ grad, const bool* __restrict__ keep,
               float* __restrict__ out, int64_t count, float scale) {
  const auto* __restrict__ keep_bytes = reinterpret_cast<const uint8_t*>(keep);
  for (int64_t j = 0; j < count; ++j) out[j] = grad[j] * (float(int32_t(keep_bytes[j])) * scale);
}

float keep_scale(int64_t dropped) {
  TORCH_CHECK(dropped > 0 && dropped < kLevels, "dropout: dropped levels must be in (0, 65536)");
  return float(kLevels) / float(kLevels - dropped);
}

}  // namespace

// x (contiguous float32, CPU), dropped = round(p * 65536) -> {x * (mask * scale), mask (bool)}.
std::vector<at::Tensor> dropout_forward(const at::Tensor& x, int64_t dropped) {
  TORCH_CHECK(x.is_contiguous() && x.scalar_type() == at::kFloat && x.device().is_cpu(),
              "dropout: contiguous float32 CPU tensors only");
  const float scale = keep_scale(dropped);
  const uint32_t threshold = uint32_t(dropped);
  const int64_t count = x.numel();
  auto out = at::empty_like(x);
  auto keep = at::empty(x.sizes(), x.options().dtype(at::kBool));
  // The draws, serial as torch's generator is, into 16-bit levels in memory order (the Python
  // code's int16 view of its int64 words); then one loop without branches, vectorised and split
  // over the threads.
  auto levels = at::empty({(count + 3) / 4 * 4}, x.options().dtype(at::kShort));
  uint16_t* level = reinterpret_cast<uint16_t*>(levels.data_ptr<int16_t>());
  {
    auto* generator = at::check_generator<at::CPUGeneratorImpl>(
        at::detail::getDefaultCPUGenerator());
    std::lock_guard<std::mutex> lock(generator->mutex_);  // as random_ holds it
    for (int64_t w = 0; w < (count + 3) / 4; ++w) {
      const uint64_t word = generator->random64();
      std::memcpy(level + 4 * w, &word, sizeof(word));
    }
  }
  const float* in = x.data_ptr<float>();
  float* o = out.data_ptr<float>();
  bool* k = keep.data_ptr<bool>();
  at::parallel_for(0, count, 1 << 15, [&](int64_t first, int64_t last) {
    drop(level + first, in + first, o + first, k + first, last - first, threshold, scale);
  });
  return {out, keep};
}

// grad_output (float32, CPU), the forward's mask, dropped -> grad_output * (mask * scale).
at::Tensor dropout_backward(const at::Tensor& grad_output, const at::Tensor& keep,
                            int64_t dropped) {
  TORCH_CHECK(grad_output.scalar_type() == at::kFloat && keep.scalar_type() == at::kBool &&
                  grad_output.numel() == keep.numel() && keep.is_contiguous(),
              "dropout: float32 gradient and the forward's mask");
  const float scale = keep_scale(dropped);
  const auto grad = grad_output.contiguous();
  auto grad_input = at::empty_like(grad);
  const float* g = grad.data_ptr<float>();
  const bool* k = keep.data_ptr<bool>();
  float* o = grad_input.data_ptr<float>();
  at::parallel_for(0, grad.numel(), 1 << 15, [&](int64_t first, int64_t last) {
    pass_kept(g + first, k + first, o + first, last - first, scale);
  });
  return grad_input;
}

TORCH_LIBRARY_FRAGMENT(crema, m) {
  m.def("dropout_forward", &dropout_forward);
  m.def("dropout_backward", &dropout_backward);
}
