// Whole-text number parsing for flags, spec strings and file metadata: a value only when the
// text (blanks around it aside) is one number and nothing else, so "3x" or "" never pass for 3
// or 0. Callers turn nullopt into an error that names their flag, key or file.
//
//   if (auto v = gs::parse_double(" 2.5")) use(*v);   // 2.5
//   gs::parse_int64("12e3");                           // nullopt: integers are digits only
#pragma once
#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace gs {

inline std::string_view trim_blanks(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// std::from_chars rules: a leading '-' but no '+'; for doubles "inf" and "nan" parse (check isfinite).
template <class T> std::optional<T> parse_number(std::string_view text) {
  text = trim_blanks(text);
  T out{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return out;
}
inline std::optional<double> parse_double(std::string_view text) { return parse_number<double>(text); }
inline std::optional<int64_t> parse_int64(std::string_view text) { return parse_number<int64_t>(text); }

}  // namespace gs
