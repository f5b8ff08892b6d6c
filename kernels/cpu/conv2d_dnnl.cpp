// The "onednn" conv2d variant (f32): oneDNN's convolution primitives as the bar the other
// variants are measured against. Compiled only with GS_DNNL (cmake/dnnl.cmake). Primitives and
// their reorders are built once per geometry and cached; oneDNN picks its own blocked layouts
// ("any") and our NCHW/OIHW buffers are reordered in and out of them.
#ifdef GS_DNNL
#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "kernels/cpu/conv2d_variants.h"

namespace gs::kernels {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}
dnnl::stream& cpu_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

// One user buffer (plain layout) bound to one primitive argument, with a reorder when the
// primitive wants another layout.
struct Binding {
  int arg = 0;
  bool is_output = false;
  memory user;      // our buffer; its handle is set per call
  memory internal;  // the primitive's layout, or == user
  dnnl::reorder reorder;
  bool needs_reorder = false;
};

struct Cached {
  dnnl::primitive prim;
  std::vector<Binding> bindings;
  std::unordered_map<int, memory> args;  // built once: the memory objects persist, handles change
};

Binding bind(int arg, bool is_output, const memory::desc& user_md, const memory::desc& prim_md) {
  Binding b;
  b.arg = arg, b.is_output = is_output;
  b.user = memory(user_md, cpu_engine(), DNNL_MEMORY_NONE);
  b.needs_reorder = user_md != prim_md;
  if (b.needs_reorder) {
    b.internal = memory(prim_md, cpu_engine());
    b.reorder = is_output ? dnnl::reorder(b.internal, b.user) : dnnl::reorder(b.user, b.internal);
  } else {
    b.internal = b.user;
  }
  return b;
}

void finish(Cached& c) {
  for (auto& b : c.bindings) c.args[b.arg] = b.internal;
}

// Runs a cached primitive on the given user pointers (one per binding, in order). A cached
// entry is not for concurrent use by several threads (kernels run from one thread at a time).
void run(Cached& c, const std::array<void*, 4>& pointers) {
  auto& stream = cpu_stream();
  for (size_t i = 0; i < c.bindings.size(); ++i) {
    Binding& b = c.bindings[i];
    b.user.set_data_handle(pointers[i]);
    if (b.needs_reorder && !b.is_output) b.reorder.execute(stream, b.user, b.internal);
  }
  c.prim.execute(stream, c.args);
  for (auto& b : c.bindings)
    if (b.needs_reorder && b.is_output) b.reorder.execute(stream, b.internal, b.user);
  stream.wait();
}

struct Descs {
  memory::desc src, wei, bias, dst;  // plain layouts of our buffers
  memory::desc src_any, wei_any, bias_any, dst_any;
  memory::dims strides, dilates, pad_l, pad_r;
};

Descs descs(const Conv2dShape& s) {
  const auto f32 = memory::data_type::f32;
  Descs d;
  d.src = memory::desc({s.N, s.C, s.H, s.W}, f32, tag::nchw);
  d.dst = memory::desc({s.N, s.K, s.P, s.Q}, f32, tag::nchw);
  d.bias = memory::desc({s.K}, f32, tag::x);
  if (s.groups > 1)
    d.wei = memory::desc({s.groups, s.K / s.groups, s.C / s.groups, s.R, s.S}, f32, tag::goihw);
  else
    d.wei = memory::desc({s.K, s.C, s.R, s.S}, f32, tag::oihw);
  d.src_any = memory::desc(d.src.dims(), f32, tag::any);
  d.dst_any = memory::desc(d.dst.dims(), f32, tag::any);
  d.wei_any = memory::desc(d.wei.dims(), f32, tag::any);
  d.bias_any = d.bias;
  d.strides = {s.stride_h, s.stride_w};
  d.dilates = {s.dilation_h - 1, s.dilation_w - 1};
  d.pad_l = {s.pad_h, s.pad_w};
  d.pad_r = {(s.P - 1) * s.stride_h + (s.R - 1) * s.dilation_h + 1 - s.H - s.pad_h,
             (s.Q - 1) * s.stride_w + (s.S - 1) * s.dilation_w + 1 - s.W - s.pad_w};
  return d;
}

dnnl::convolution_forward::primitive_desc forward_pd(const Descs& d, bool with_bias) {
  using cf = dnnl::convolution_forward;
  auto desc = with_bias ? cf::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.src_any,
                                   d.wei_any, d.bias_any, d.dst_any, d.strides, d.dilates, d.pad_l, d.pad_r)
                        : cf::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.src_any,
                                   d.wei_any, d.dst_any, d.strides, d.dilates, d.pad_l, d.pad_r);
  return cf::primitive_desc(desc, cpu_engine());
}

// Cache key: the geometry, the pass (0 fwd, 1 bwd data, 2 bwd weights) and the bias flag.
using Key = std::tuple<int, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t, int64_t>;
Key key(int pass, bool bias, const Conv2dShape& s) {
  return {pass, bias,       s.N,        s.C,     s.H,     s.W,          s.K,          s.R,
          s.S,  s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dilation_h, s.dilation_w, s.groups};
}

// The cached primitive for a key, built by make() on first use. Entries live for the process.
template <class Make> Cached& cached(const Key& k, Make make) {
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<Cached>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(k);
  if (it == cache.end()) it = cache.emplace(k, std::make_unique<Cached>(make())).first;
  return *it->second;
}

// oneDNN refuses descriptors with no images or channels ("could not create a descriptor"): such
// a convolution (all zeros, or the bias alone) goes to the im2col variant.
bool onednn_can_describe(const Conv2dShape& s) { return s.N > 0 && s.C > 0 && s.K > 0; }

}  // namespace

void conv2d_onednn(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  if (!onednn_can_describe(s)) return conv2d_table<float>().get("im2col")(s, x, w, bias, y);
  Cached& c = cached(key(0, bias != nullptr, s), [&] {
    Descs d = descs(s);
    auto pd = forward_pd(d, bias != nullptr);
    Cached c;
    c.prim = dnnl::convolution_forward(pd);
    c.bindings.push_back(bind(DNNL_ARG_SRC, false, d.src, pd.src_desc()));
    c.bindings.push_back(bind(DNNL_ARG_WEIGHTS, false, d.wei, pd.weights_desc()));
    if (bias) c.bindings.push_back(bind(DNNL_ARG_BIAS, false, d.bias, pd.bias_desc()));
    c.bindings.push_back(bind(DNNL_ARG_DST, true, d.dst, pd.dst_desc()));
    finish(c);
    return c;
  });
  if (bias)
    run(c, {const_cast<float*>(x), const_cast<float*>(w), const_cast<float*>(bias), y});
  else
    run(c, {const_cast<float*>(x), const_cast<float*>(w), y, nullptr});
}

void conv2d_backward_data_onednn(const Conv2dShape& s, const float* gy, const float* w, float* gx) {
  if (!onednn_can_describe(s)) return conv2d_backward_data_table<float>().get("im2col")(s, gy, w, gx);
  Cached& c = cached(key(1, false, s), [&] {
    Descs d = descs(s);
    using cb = dnnl::convolution_backward_data;
    auto desc = cb::desc(dnnl::algorithm::convolution_direct, d.src_any, d.wei_any, d.dst_any, d.strides, d.dilates,
                         d.pad_l, d.pad_r);
    auto pd = cb::primitive_desc(desc, cpu_engine(), forward_pd(d, false));
    Cached c;
    c.prim = cb(pd);
    c.bindings.push_back(bind(DNNL_ARG_DIFF_DST, false, d.dst, pd.diff_dst_desc()));
    c.bindings.push_back(bind(DNNL_ARG_WEIGHTS, false, d.wei, pd.weights_desc()));
    c.bindings.push_back(bind(DNNL_ARG_DIFF_SRC, true, d.src, pd.diff_src_desc()));
    finish(c);
    return c;
  });
  run(c, {const_cast<float*>(gy), const_cast<float*>(w), gx, nullptr});
}

void conv2d_backward_weight_onednn(const Conv2dShape& s, const float* x, const float* gy, float* gw, float* gbias) {
  if (!gw && !gbias) return;
  if (!onednn_can_describe(s)) return conv2d_backward_weight_table<float>().get("im2col")(s, x, gy, gw, gbias);
  // oneDNN always computes the weight gradient; a caller that wants only the bias gets it
  // through a scratch weight gradient.
  const bool with_bias = gbias != nullptr;
  Cached& c = cached(key(2, with_bias, s), [&] {
    Descs d = descs(s);
    using cw = dnnl::convolution_backward_weights;
    auto desc = with_bias ? cw::desc(dnnl::algorithm::convolution_direct, d.src_any, d.wei_any, d.bias_any, d.dst_any,
                                     d.strides, d.dilates, d.pad_l, d.pad_r)
                          : cw::desc(dnnl::algorithm::convolution_direct, d.src_any, d.wei_any, d.dst_any, d.strides,
                                     d.dilates, d.pad_l, d.pad_r);
    auto pd = cw::primitive_desc(desc, cpu_engine(), forward_pd(d, with_bias));
    Cached c;
    c.prim = cw(pd);
    c.bindings.push_back(bind(DNNL_ARG_SRC, false, d.src, pd.src_desc()));
    c.bindings.push_back(bind(DNNL_ARG_DIFF_DST, false, d.dst, pd.diff_dst_desc()));
    c.bindings.push_back(bind(DNNL_ARG_DIFF_WEIGHTS, true, d.wei, pd.diff_weights_desc()));
    if (with_bias) c.bindings.push_back(bind(DNNL_ARG_DIFF_BIAS, true, d.bias, pd.diff_bias_desc()));
    finish(c);
    return c;
  });
  thread_local std::vector<float> scratch_gw;
  if (!gw) {
    scratch_gw.resize(size_t(s.K * (s.C / s.groups) * s.R * s.S));
    gw = scratch_gw.data();
  }
  run(c, {const_cast<float*>(x), const_cast<float*>(gy), gw, gbias});
}

}  // namespace gs::kernels
#endif  // GS_DNNL
