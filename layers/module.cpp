// Module machinery: registration, traversal in PyTorch's order, state_dict load with
// all-at-once error reports, train/eval, dtype conversion and the PyTorch-like repr.
#include "layers/module.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "autograd/checkpoint.h"
#include "tensor/raw_ops.h"
#include "tensor/scope.h"

namespace gs::nn {

Tensor Module::operator()(const Tensor& x) {
  Tensor y;
  if (name_in_parent_.empty()) {
    y = forward(x);
  } else {
    ScopeGuard scope(name_in_parent_);
    y = forward(x);
  }
  if (is_recomputing()) return y;  // a checkpoint's second run: the hooks saw the first
  for (auto& [id, hook] : forward_hooks_) hook(*this, x, y);
  if (!backward_hooks_.empty() && y.requires_grad()) {
    // A forward that hands back its input (Identity): the hook goes on a recorded identity view,
    // not on the caller's tensor, where it would stay and fire for every later use of it.
    if (y.is_same(x)) y = reshape(y, y.shape());
    // The tensor hook holds the module weakly (when a shared_ptr owns it): a graph that outlives
    // its module calls nothing.
    std::weak_ptr<Module> weak = weak_from_this();
    Module* self = weak.expired() ? this : nullptr;
    register_hook(y, [weak, self](const Tensor& grad) {
      std::shared_ptr<Module> owner = weak.lock();
      Module* module = owner ? owner.get() : self;
      if (!module) return Tensor();
      auto hooks_now = module->backward_hooks_;  // a hook may remove itself
      for (auto& [id, hook] : hooks_now) hook(*module, grad);
      return Tensor();
    });
  }
  return y;
}

int Module::register_forward_hook(ForwardHook hook) {
  forward_hooks_.emplace_back(next_hook_id_, std::move(hook));
  return next_hook_id_++;
}

void Module::remove_forward_hook(int id) {
  std::erase_if(forward_hooks_, [id](const auto& h) { return h.first == id; });
}

int Module::register_backward_hook(BackwardHook hook) {
  backward_hooks_.emplace_back(next_hook_id_, std::move(hook));
  return next_hook_id_++;
}

void Module::remove_backward_hook(int id) {
  std::erase_if(backward_hooks_, [id](const auto& h) { return h.first == id; });
}

// ---- registration ----

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  GS_CHECK(!name.empty() && name.find('.') == std::string::npos,
           "register_parameter (%s): name '%s' must be non-empty and contain no '.'", type_name().c_str(),
           name.c_str());
  GS_CHECK(t.defined(), "register_parameter (%s): tensor '%s' is undefined", type_name().c_str(), name.c_str());
  GS_CHECK(is_floating(t.dtype()), "register_parameter (%s): '%s' is %s; parameters must be floating point",
           type_name().c_str(), name.c_str(), dtype_name(t.dtype()));
  for (auto& [n, p] : parameters_) {
    GS_CHECK(n != name, "register_parameter (%s): '%s' is already registered", type_name().c_str(), name.c_str());
  }
  t.set_requires_grad(true);
  t.ensure_autograd_meta().name = name;
  parameters_.emplace_back(name, std::move(t));
  return parameters_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  GS_CHECK(!name.empty() && name.find('.') == std::string::npos,
           "register_buffer (%s): name '%s' must be non-empty and contain no '.'", type_name().c_str(), name.c_str());
  for (auto& [n, b] : buffers_) {
    GS_CHECK(n != name, "register_buffer (%s): '%s' is already registered", type_name().c_str(), name.c_str());
  }
  buffers_.emplace_back(name, std::move(t));
  return buffers_.back().second;
}

void Module::attach_child(const std::string& name, std::shared_ptr<Module> m) {
  GS_CHECK(!name.empty() && name.find('.') == std::string::npos,
           "register_module (%s): name '%s' must be non-empty and contain no '.'", type_name().c_str(), name.c_str());
  GS_CHECK(m != nullptr, "register_module (%s): module '%s' is null", type_name().c_str(), name.c_str());
  GS_CHECK(m.get() != this, "register_module (%s): a module cannot be its own child", type_name().c_str());
  m->name_in_parent_ = name;
  // Parameter names carry the full dotted path; renaming here and again in each ancestor ends
  // with the path from the root.
  m->name_parameters(name);
  for (auto& [n, c] : children_) {
    if (n == name) {
      c = std::move(m);
      return;
    }
  }
  children_.emplace_back(name, std::move(m));
}

void Module::name_parameters(const std::string& prefix) {
  NamedTensors params;
  collect("", true, true, false, params);
  for (auto& [n, p] : params) p.ensure_autograd_meta().name = prefix.empty() ? n : prefix + "." + n;
}

// ---- traversal ----

void Module::collect(const std::string& prefix, bool recurse, bool params, bool buffers, NamedTensors& out) const {
  if (params) {
    for (auto& [n, p] : parameters_) out.emplace_back(prefix + n, p);
  }
  if (buffers) {
    for (auto& [n, b] : buffers_) out.emplace_back(prefix + n, b);
  }
  if (!recurse) return;
  for (auto& [n, c] : children_) c->collect(prefix + n + ".", true, params, buffers, out);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors all, out;
  collect("", recurse, true, false, all);
  // A root refreshes the dotted names (children added after registration would miss their prefix).
  if (name_in_parent_.empty() && recurse) {
    for (auto& [n, p] : all) p.ensure_autograd_meta().name = n;
  }
  std::set<const TensorImpl*> seen;
  for (auto& [n, p] : all) {
    if (seen.insert(&p.impl()).second) out.emplace_back(n, p);
  }
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, p] : named_parameters(recurse)) out.push_back(p);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect("", recurse, false, true, out);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const { return children_; }

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  std::shared_ptr<Module> self;
  try {
    self = shared_from_this();
  } catch (const std::bad_weak_ptr&) {
    GS_CHECK(false, "named_modules (%s): the module must be owned by a std::shared_ptr (use std::make_shared)",
             type_name().c_str());
  }
  out.emplace_back("", self);
  for (auto& [n, c] : children_) {
    for (auto& [sub, m] : c->named_modules()) out.emplace_back(sub.empty() ? n : n + "." + sub, m);
  }
  return out;
}

std::shared_ptr<Module> Module::child(const std::string& path) const {
  auto dot = path.find('.');
  std::string head = path.substr(0, dot);
  for (auto& [n, c] : children_) {
    if (n == head) return dot == std::string::npos ? c : c->child(path.substr(dot + 1));
  }
  std::string known;
  for (auto& [n, c] : children_) known += (known.empty() ? "" : ", ") + n;
  GS_CHECK(false, "child (%s): no child '%s' (children: %s)", type_name().c_str(), head.c_str(),
           known.empty() ? "none" : known.c_str());
  return nullptr;
}

// ---- state ----

NamedTensors Module::state_dict() const {
  NamedTensors out;
  // PyTorch's order: for each module in pre-order, its parameters, then its buffers.
  struct Walk {
    static void run(const Module& m, const std::string& prefix, NamedTensors& out) {
      m.collect(prefix, false, true, true, out);
      for (auto& [n, c] : m.children_) run(*c, prefix + n + ".", out);
    }
  };
  Walk::run(*this, "", out);
  return out;
}

void Module::load_state_dict(const NamedTensors& state, bool strict) {
  NamedTensors own = state_dict();
  std::map<std::string, Tensor> own_by_name(own.begin(), own.end());
  std::set<std::string> given;
  std::vector<std::string> problems, unexpected, missing;
  for (auto& [key, src] : state) {
    GS_CHECK(given.insert(key).second, "load_state_dict (%s): key '%s' appears twice", type_name().c_str(),
             key.c_str());
    auto it = own_by_name.find(key);
    if (it == own_by_name.end()) {
      unexpected.push_back(key);
      continue;
    }
    const Tensor& dst = it->second;
    if (!src.defined()) {
      problems.push_back("'" + key + "' is undefined");
    } else if (src.shape() != dst.shape()) {
      problems.push_back("size mismatch for '" + key + "': checkpoint has " + shape_str(src.shape()) +
                         ", the model has " + shape_str(dst.shape()));
    } else if (src.dtype() != dst.dtype()) {
      problems.push_back("dtype mismatch for '" + key + "': checkpoint has " + dtype_name(src.dtype()) +
                         ", the model has " + dtype_name(dst.dtype()));
    }
  }
  for (auto& [key, t] : own) {
    if (!given.count(key)) missing.push_back(key);
  }
  // One line, as every error here: long key lists are cut after the first few.
  auto join = [](const std::vector<std::string>& items, bool quote) {
    const size_t shown = 6;
    std::string s;
    for (size_t i = 0; i < items.size() && i < shown; ++i) {
      s += (s.empty() ? "" : ", ") + (quote ? "'" + items[i] + "'" : items[i]);
    }
    if (items.size() > shown) s += format(" and %zu more", items.size() - shown);
    return s;
  };
  std::vector<std::string> parts;
  if (strict && !missing.empty()) parts.push_back("missing key(s): " + join(missing, true));
  if (strict && !unexpected.empty()) parts.push_back("unexpected key(s): " + join(unexpected, true));
  if (!problems.empty()) parts.push_back(join(problems, false));
  std::string message;
  for (auto& p : parts) message += (message.empty() ? "" : "; ") + p;
  GS_CHECK(message.empty(), "load_state_dict (%s): %s", type_name().c_str(), message.c_str());

  NoGradGuard no_grad;
  for (auto& [key, src] : state) {
    auto it = own_by_name.find(key);
    if (it != own_by_name.end()) raw::copy_(it->second, src);
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::zero_grad() {
  for (auto& p : parameters()) p.zero_grad();
}

namespace {
// Replaces the tensor's data in place (PyTorch's set_data): every handle to it sees the new data.
void replace_data(const Tensor& t, const Tensor& data) {
  TensorImpl& impl = t.impl();
  impl.storage = data.storage();
  impl.shape = data.shape();
  impl.strides = data.strides();
  impl.offset = data.offset();
  impl.dtype = data.dtype();
  if (impl.autograd) impl.autograd->grad = Tensor();
}
}  // namespace

// Parameters and buffers keep their identity (optimizers and hooks hold the same handles);
// only their storage moves. Gradients are dropped, as after to(DType).
Device Module::device() const {
  const auto params = parameters();
  if (!params.empty()) return params.front().device();
  const auto buffers = named_buffers();
  return buffers.empty() ? Device::cpu() : buffers.front().second.device();
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  for (auto& [n, t] : state_dict()) {
    if (t.device() == device) continue;
    try {
      replace_data(t, t.to(device));
    } catch (const Error& e) {
      throw Error(format("to (%s): moving '%s' to %s failed: %s", type_name().c_str(), n.c_str(), device.str().c_str(),
                         e.what()));
    }
  }
}

void Module::to(DType dtype) {
  GS_CHECK(is_floating(dtype), "to (%s): modules convert to f32 or f64, not %s", type_name().c_str(),
           dtype_name(dtype));
  NoGradGuard no_grad;
  for (auto& [n, t] : state_dict()) {
    if (!is_floating(t.dtype()) || t.dtype() == dtype) continue;
    replace_data(t, raw::to_dtype(t, dtype));
  }
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& p : parameters()) n += p.numel();
  return n;
}

// ---- repr ----

std::string Module::repr() const {
  std::vector<std::string> extra_lines, child_lines;
  std::string extra = extra_repr();
  if (!extra.empty()) {
    std::stringstream ss(extra);
    for (std::string line; std::getline(ss, line);) extra_lines.push_back(line);
  }
  for (auto& [n, c] : children_) {
    // Indent every line after the first by two spaces (PyTorch's _addindent).
    std::string s = c->repr(), indented;
    for (char ch : s) {
      indented += ch;
      if (ch == '\n') indented += "  ";
    }
    child_lines.push_back("(" + n + "): " + indented);
  }
  std::string out = type_name() + "(";
  if (extra_lines.size() == 1 && child_lines.empty()) {
    out += extra_lines[0];
  } else if (!extra_lines.empty() || !child_lines.empty()) {
    for (auto& l : extra_lines) out += "\n  " + l;
    for (auto& l : child_lines) out += "\n  " + l;
    out += "\n";
  }
  return out + ")";
}

std::string py_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  // Shortest digits that round-trip, as Python's repr.
  char buf[64];
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*e", p - 1, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s(buf);
  bool negative = s[0] == '-';
  if (negative) s = s.substr(1);
  auto e_pos = s.find('e');
  int exponent = std::atoi(s.c_str() + e_pos + 1);
  std::string digits;
  for (size_t i = 0; i < e_pos; ++i) {
    if (s[i] != '.') digits += s[i];
  }
  std::string out;
  if (exponent < -4 || exponent >= 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp_buf;
  } else if (exponent < 0) {
    out = "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
  } else {
    size_t int_len = static_cast<size_t>(exponent) + 1;
    if (digits.size() <= int_len) {
      out = digits + std::string(int_len - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, int_len) + "." + digits.substr(int_len);
    }
  }
  return negative ? "-" + out : out;
}

std::string py_bool(bool v) { return v ? "True" : "False"; }

}  // namespace gs::nn
