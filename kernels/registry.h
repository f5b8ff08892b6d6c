// The kernel variant registry: each kernel op (matmul, conv2d, ...) has named variants with
// one signature; `ref` is the naive truth. Selection: GS_KERNELS="matmul=ref,conv2d=direct",
// select_variant() or the CLI's --kernel. Tests run every variant against ref; bench/ times them.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace gs::kernels {

// Global selection state (explicit, documented): op name -> chosen variant name.
// Read GS_KERNELS once at first use. Not thread-safe to change while kernels run.
void select_variant(const std::string& op, const std::string& variant);
std::string selected_variant(const std::string& op);  // "" = the op's default
void parse_selection(const std::string& spec);        // "op=variant,op=variant"
std::map<std::string, std::vector<std::string>> list_variants();  // every registered op
void note_variant(const std::string& op, const std::string& variant);  // used by VariantTable
// Every selected op and variant is a registered one, else std::invalid_argument naming the
// op (and the known ops) or the variant (and its op's known variants). Tables register on first
// use: call it after building them all (all_tables.h: check_selection_against_every_table).
void check_selection();

// Variants of one op for one signature (e.g. matmul for float). The first added is the
// default unless `make_default` says otherwise.
template <class Fn> class VariantTable {
 public:
  explicit VariantTable(std::string op) : op_(std::move(op)) {}
  VariantTable& add(const std::string& name, Fn fn, bool make_default = false) {
    names_.push_back(name);
    fns_.push_back(fn);
    if (make_default || default_index_ < 0) default_index_ = static_cast<int>(fns_.size()) - 1;
    note_variant(op_, name);
    return *this;
  }
  // The selected variant (or the default); an unknown selection is a clear error.
  Fn get() const;
  Fn get(const std::string& name) const;
  const std::vector<std::string>& names() const { return names_; }
  const std::string& op() const { return op_; }
  std::string default_name() const { return names_.at(default_index_); }

 private:
  std::string op_;
  std::vector<std::string> names_;
  std::vector<Fn> fns_;
  int default_index_ = -1;
};

[[noreturn]] void unknown_variant(const std::string& op, const std::string& name,
                                  const std::vector<std::string>& known);

template <class Fn> Fn VariantTable<Fn>::get(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return fns_[i];
  }
  unknown_variant(op_, name, names_);
}

template <class Fn> Fn VariantTable<Fn>::get() const {
  std::string chosen = selected_variant(op_);
  if (chosen.empty()) return fns_.at(default_index_);
  return get(chosen);
}

}  // namespace gs::kernels
