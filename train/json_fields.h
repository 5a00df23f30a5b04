// Reading the fields of the run files (config.json, trainer.json, metrics lines) from parsed JSON, as
// hostile input: each value must have the right JSON type and lie in its range, and integers are read as
// int64 and checked before any narrowing (a 2^32 + 1 must not become 1). Every problem is an IOError
// naming the file (`source`) and the field.
#pragma once
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "advgrad/core/error.h"

namespace advgrad::json_fields {

using Json = nlohmann::json;

// The value as it appears in the file, cut short for messages.
inline std::string shown(const Json& v) {
  std::string s = v.dump();
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

inline const Json& field(const Json& obj, const std::string& name, const std::string& source) {
  auto it = obj.find(name);
  if (it == obj.end()) throw IOError(source + ": missing field '" + name + "'");
  return *it;
}

inline int64_t get_int(const Json& obj, const std::string& name, int64_t lo, int64_t hi, const std::string& source) {
  const Json& v = field(obj, name, source);
  const std::string want = "field '" + name + "' must be a whole number in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "], got ";
  if (!v.is_number_integer()) throw IOError(source + ": " + want + shown(v));
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (hi < 0 || u > uint64_t(hi) || (lo > 0 && u < uint64_t(lo))) throw IOError(source + ": " + want + shown(v));
    return int64_t(u);
  }
  const int64_t i = v.get<int64_t>();
  if (i < lo || i > hi) throw IOError(source + ": " + want + shown(v));
  return i;
}

// A finite number in [lo, hi].
inline double get_number(const Json& obj, const std::string& name, double lo, double hi, const std::string& source) {
  const Json& v = field(obj, name, source);
  const double d = v.is_number() ? v.get<double>() : NAN;
  if (!(std::isfinite(d) && d >= lo && d <= hi))
    throw IOError(source + ": field '" + name + "' must be a finite number in [" + Json(lo).dump() + ", " +
                  Json(hi).dump() + "], got " + shown(v));
  return d;
}

inline std::string get_string(const Json& obj, const std::string& name, const std::string& source) {
  const Json& v = field(obj, name, source);
  if (!v.is_string()) throw IOError(source + ": field '" + name + "' must be a string, got " + shown(v));
  return v.get<std::string>();
}

inline bool get_bool(const Json& obj, const std::string& name, const std::string& source) {
  const Json& v = field(obj, name, source);
  if (!v.is_boolean()) throw IOError(source + ": field '" + name + "' must be true or false, got " + shown(v));
  return v.get<bool>();
}

}  // namespace advgrad::json_fields
