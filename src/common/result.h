// Errors as values: a Result<T> holds either a T or an Error that says why.
// std::expected is C++23; this is the small subset Lichen needs under C++20.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace lichen {

struct Error {
  std::string message;
  // A Greengrass deployment error code when one applies (ARTIFACT_CHECKSUM_MISMATCH,
  // RECIPE_PARSE_ERROR, ...); empty otherwise.
  std::string code = {};
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : e_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *e_; }

 private:
  std::optional<Error> e_;
};

inline Error MakeError(std::string message) { return Error{std::move(message)}; }
inline Error MakeError(std::string code, std::string message) {
  return Error{std::move(message), std::move(code)};
}

}  // namespace lichen
