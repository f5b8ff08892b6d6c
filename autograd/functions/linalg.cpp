// matmul, softmax, log_softmax, fused cross-entropy (composite for probability targets), and
// mse_loss (composite).
#include <limits>

#include "autograd/ops.h"
#include "kernels/cpu/softmax.h"
#include "tensor/raw_nn.h"
#include "tensor/raw_ops.h"

namespace gs {

using raw::BinaryOp;

// Z = A @ B (batched, broadcasting);  dA += G @ B^T,  dB += A^T @ G  (summed over broadcast batches)
Tensor matmul(const Tensor& a, const Tensor& b) {
  Tensor out = raw::matmul(a, b);
  record(OpId::Matmul, {a, b}, {out}, {a, b}, [](BackwardContext& c) {
    Tensor A = c.saved(0), B = c.saved(1), G = c.grad_output();
    // Promote 1-d operands as the forward did, so the formulas are the 2-d ones. G lost the
    // N dim last, so it is put back first (a 1-d @ 1-d product has a 0-d G).
    // (In recorded ops, so that a create_graph backward is differentiable.)
    if (B.dim() == 1) {
      B = unsqueeze(B, 1);
      G = unsqueeze(G, G.dim());
    }
    if (A.dim() == 1) {
      A = unsqueeze(A, 0);
      G = unsqueeze(G, G.dim() - 1);
    }
    // accumulate() sums broadcast batch dims back to each input's shape.
    if (c.needs_grad(0)) {
      Tensor dA = matmul(G, transpose(B, -1, -2));
      if (c.input_shapes_[0].size() == 1) dA = squeeze(dA, -2);
      c.accumulate(0, dA);
    }
    if (c.needs_grad(1)) {
      Tensor dB;
      if (B.dim() == 2 && A.dim() > 2) {
        // One matrix against a batch: its gradient sums over every row of the batch, one GEMM.
        Shape rows_shape(A.shape().begin(), A.shape().end() - 1);
        const int64_t rows = shape_numel(rows_shape);
        Tensor A_rows = reshape(A, {rows, A.size(-1)}), G_rows = reshape(G, {rows, G.size(-1)});
        dB = c.create_graph() ? matmul(transpose(A_rows, 0, 1), G_rows) : raw::mm(A_rows, G_rows, true, false);
      } else {
        dB = matmul(transpose(A, -1, -2), G);
      }
      if (c.input_shapes_[1].size() == 1) dB = squeeze(dB, -1);
      c.accumulate(1, dB);
    }
  });
  return out;
}

// y = softmax(x);  dx += y * (g - sum(g * y))
Tensor softmax(const Tensor& x, int64_t dim) {
  Tensor out = raw::softmax(x, dim, false);
  record(OpId::Softmax, {x}, {out}, {out}, [dim](BackwardContext& c) {
    const Tensor &y = c.saved(0), &g = c.grad_output();
    if (!c.create_graph()) return c.accumulate(0, raw::softmax_backward(y, g, dim, false));
    c.accumulate(0, mul(y, sub(g, sum(mul(g, y), {dim}, true))));
  });
  return out;
}

// y = log_softmax(x);  dx += g - softmax(x) * sum(g)
Tensor log_softmax(const Tensor& x, int64_t dim) {
  Tensor out = raw::softmax(x, dim, true);
  record(OpId::LogSoftmax, {x}, {out}, {out}, [dim](BackwardContext& c) {
    const Tensor &y = c.saved(0), &g = c.grad_output();
    if (!c.create_graph()) return c.accumulate(0, raw::softmax_backward(y, g, dim, true));
    c.accumulate(0, sub(g, mul(exp(y), sum(g, {dim}, true))));
  });
  return out;
}

namespace {

// The fused path on (N, C) logits and (N) class indices: one CrossEntropy tape entry.
// loss_n = -sum_c a_c log softmax(x_n)_c with a_c = (1-eps) w_t [c == t] + eps/C w_c;
// dx_n += (softmax(x_n) sum_c a_c - a) * g_n. Mean reduction divides by the sum of w_t over the
// rows not ignored (their count without weights).
Tensor cross_entropy_rows(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opt) {
  int64_t N = logits.shape()[0], C = logits.shape()[1];
  Tensor x = raw::contiguous(logits), t = raw::contiguous(target);
  Tensor w = opt.weight.defined() ? raw::contiguous(opt.weight) : Tensor();
  std::vector<double> w_host = w.defined() ? w.to(Device::cpu()).to_vector<double>() : std::vector<double>();
  double counted = 0, weight_sum = 0;
  for (double v : w_host) weight_sum += v;
  for (int64_t v : t.to_vector<int64_t>()) {
    if (v == opt.ignore_index) continue;
    GS_CHECK(v >= 0 && v < C, "cross_entropy: target %lld is out of range for %lld classes", (long long)v,
             (long long)C);
    counted += w.defined() ? w_host[static_cast<size_t>(v)] : 1.0;
  }
  raw::CrossEntropyRows rows = raw::cross_entropy_rows(x, t, w, opt.label_smoothing, opt.ignore_index);
  Tensor per_row = rows.loss, log_probs = rows.log_probs;
  Tensor out;
  double scale = 1.0;
  if (opt.reduction == Reduction::None) {
    out = per_row;
  } else {
    out = raw::reduce(raw::ReduceOp::Sum, per_row, {}, false);
    if (opt.reduction == Reduction::Mean) {
      // 0/0 (every row ignored, or only zero-weight classes) is nan, as PyTorch.
      scale = counted != 0 ? 1.0 / counted : std::numeric_limits<double>::quiet_NaN();
      out = raw::binary_scalar(BinaryOp::Mul, out, scale);
    }
  }
  Reduction reduction = opt.reduction;
  double eps = opt.label_smoothing;
  int64_t ignore = opt.ignore_index;
  std::vector<Tensor> saved = {log_probs, t};
  if (w.defined()) saved.push_back(w);
  std::shared_ptr<Entry> entry = record(OpId::CrossEntropy, {logits}, {out}, saved, [=](BackwardContext& c) {
    if (!c.create_graph()) {
      Tensor g_rows =
          reduction == Reduction::None
              ? raw::contiguous(c.grad_output())
              : raw::contiguous(raw::expand(raw::binary_scalar(BinaryOp::Mul, c.grad_output(), scale), {N}));
      Tensor weight = w.defined() ? c.saved(2) : Tensor();
      c.accumulate(0,
                   raw::cross_entropy_rows_backward(c.saved(0), c.saved(1), weight, weight_sum, g_rows, eps, ignore));
      return;
    }
    // Recorded: dx = (softmax(x) * S - a) * g_rows, with a (N, C) and S = sum_c a (N, 1) constants.
    std::vector<int64_t> targets = c.saved(1).to_vector<int64_t>();
    std::vector<double> weights =
        w.defined() ? c.saved(2).to(Device::cpu()).to_vector<double>() : std::vector<double>();
    std::vector<double> a(static_cast<size_t>(N * C), 0.0), row_sum(static_cast<size_t>(N), 0.0);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t target = targets[static_cast<size_t>(n)];
      if (target == ignore) continue;
      for (int64_t k = 0; k < C; ++k) {
        const double w_k = weights.empty() ? 1.0 : weights[static_cast<size_t>(k)];
        double v = eps / double(C) * w_k + (k == target ? (1.0 - eps) * w_k : 0.0);
        a[static_cast<size_t>(n * C + k)] = v;
        row_sum[static_cast<size_t>(n)] += v;
      }
    }
    TensorOptions opt{c.grad_output().dtype(), c.grad_output().device()};
    Tensor A = from_vector(a, {N, C}, opt), S = from_vector(row_sum, {N, 1}, opt);
    // The mean's scale goes only to rows that count: with every row ignored it is nan (0/0, as the
    // loss), and 0 * nan would make the ignored rows' zero gradient nan (torch gives zeros).
    Tensor g_rows = c.grad_output();
    if (reduction != Reduction::None) {
      std::vector<double> row_scale(static_cast<size_t>(N), 0.0);
      for (int64_t n = 0; n < N; ++n) {
        bool counts = false;
        for (int64_t k = 0; k < C; ++k) counts = counts || a[static_cast<size_t>(n * C + k)] != 0;
        if (counts) row_scale[static_cast<size_t>(n)] = scale;
      }
      g_rows = mul(expand(c.grad_output(), {N}), from_vector(row_scale, {N}, opt));
    }
    // saved(0) comes back attached as the logits (below): log_softmax(x) = x - lse(x) is x shifted
    // by a constant per row, so softmax of it is softmax(x) in value and in derivative.
    c.accumulate(0, mul(sub(mul(softmax(c.saved(0), 1), S), A), unsqueeze(g_rows, 1)));
  });
  // The log-probabilities stand in for the logits under create_graph, as torch's log_softmax +
  // nll_loss keep only the log-probabilities: the logits are not kept alive for backward.
  if (entry) entry->saved_source[0] = 0;
  return out;
}

// Class probabilities (soft labels) of the logits' shape, C along class_dim: composite.
Tensor cross_entropy_probabilities(const Tensor& logits, const Tensor& target, int64_t class_dim,
                                   const CrossEntropyOptions& opt) {
  const int64_t C = logits.shape()[static_cast<size_t>(class_dim)];
  Tensor q = target;
  if (opt.label_smoothing != 0) q = add(mul(target, 1.0 - opt.label_smoothing), opt.label_smoothing / double(C));
  Tensor prod = mul(log_softmax(logits, class_dim), q);
  if (opt.weight.defined()) {
    Shape w_shape(static_cast<size_t>(logits.dim() - class_dim), 1);  // (C, 1, ..., 1): broadcasts along C
    w_shape[0] = C;
    prod = mul(prod, reshape(opt.weight, w_shape));
  }
  Tensor per = neg(sum(prod, {class_dim}));
  if (opt.reduction == Reduction::None) return per;
  if (opt.reduction == Reduction::Sum) return sum(per);
  return mean(per);
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opt) {
  GS_CHECK(logits.dim() >= 1, "cross_entropy: logits must be (N, C), (C) or (N, C, d1, ...), got %s",
           shape_str(logits.shape()).c_str());
  GS_CHECK(opt.label_smoothing >= 0 && opt.label_smoothing <= 1,
           "cross_entropy: label_smoothing must be in [0, 1], got %g", opt.label_smoothing);
  const int64_t class_dim = logits.dim() == 1 ? 0 : 1;
  const int64_t C = logits.shape()[static_cast<size_t>(class_dim)];
  if (opt.weight.defined()) {
    GS_CHECK(opt.weight.dim() == 1 && opt.weight.shape()[0] == C,
             "cross_entropy: weight %s must be (C) = [%lld] for logits %s", shape_str(opt.weight.shape()).c_str(),
             (long long)C, shape_str(logits.shape()).c_str());
    GS_CHECK(opt.weight.dtype() == logits.dtype(), "cross_entropy: weight is %s but logits are %s",
             dtype_name(opt.weight.dtype()), dtype_name(logits.dtype()));
  }
  if (is_floating(target.dtype())) {
    GS_CHECK(target.shape() == logits.shape(),
             "cross_entropy: probability target %s must have the logits' shape %s (class indices are i64)",
             shape_str(target.shape()).c_str(), shape_str(logits.shape()).c_str());
    GS_CHECK(opt.ignore_index == -100,
             "cross_entropy: ignore_index (%lld) is for class-index targets, not probabilities",
             (long long)opt.ignore_index);
    return cross_entropy_probabilities(logits, target, class_dim, opt);
  }
  check_dtype("cross_entropy", target, DType::I64, "target");
  Shape expected = logits.shape();
  expected.erase(expected.begin() + class_dim);
  GS_CHECK(target.shape() == expected, "cross_entropy: target %s must be %s for logits %s",
           shape_str(target.shape()).c_str(), shape_str(expected).c_str(), shape_str(logits.shape()).c_str());
  if (logits.dim() == 2) return cross_entropy_rows(logits, target, opt);
  // (C) and (N, C, d1, ...): C moved last and every other dim flattened into rows.
  Tensor rows_logits;
  if (logits.dim() == 1) {
    rows_logits = reshape(logits, {1, C});
  } else {
    std::vector<int64_t> perm = {0};
    for (int64_t d = 2; d < logits.dim(); ++d) perm.push_back(d);
    perm.push_back(1);
    rows_logits = reshape(permute(logits, perm), {target.numel(), C});
  }
  Tensor out = cross_entropy_rows(rows_logits, reshape(target, {target.numel()}), opt);
  return opt.reduction == Reduction::None ? reshape(out, target.shape()) : out;
}

// mse = reduce((input - target)^2): composite.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  GS_CHECK(input.shape() == target.shape(), "mse_loss: input %s and target %s must have one shape",
           shape_str(input.shape()).c_str(), shape_str(target.shape()).c_str());
  Tensor d = sub(input, target);
  Tensor sq = mul(d, d);
  if (reduction == Reduction::None) return sq;
  return reduction == Reduction::Sum ? sum(sq) : mean(sq);
}

}  // namespace gs
