#include "ipc/canonical_json.h"

#include <array>
#include <cstddef>

namespace lichen::ipc {
namespace {

constexpr std::size_t kMaxDepth = 128;
constexpr std::size_t kMaxMembers = 32;
constexpr std::size_t kMaxDigits = 18;  // below 2^63 whatever the digits

// A recursive-descent scanner; every function returns false on anything non-canonical.
class Scanner {
 public:
  explicit Scanner(std::string_view text, std::size_t pos = 0) : text_(text), pos_(pos) {}

  bool AtEnd() const { return pos_ == text_.size(); }
  std::size_t pos() const { return pos_; }
  bool Peek(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  void Skip() { ++pos_; }

  bool Value(std::size_t depth) {
    if (AtEnd()) return false;
    switch (text_[pos_]) {
      case '{':
        return Object(depth + 1);
      case '[':
        return Array(depth + 1);
      case '"':
        return String();
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default:
        return Number();
    }
  }

  bool Object(std::size_t depth) {
    if (depth > kMaxDepth) return false;
    ++pos_;  // '{'
    if (Peek('}')) return ++pos_, true;
    std::array<std::string_view, kMaxMembers> keys;
    std::size_t count = 0;
    while (true) {
      const std::size_t key_start = pos_;
      if (!Peek('"') || !String()) return false;
      const std::string_view key = text_.substr(key_start, pos_ - key_start);
      if (count == keys.size()) return false;
      for (std::size_t i = 0; i < count; ++i) {
        if (keys[i] == key) return false;
      }
      keys[count++] = key;
      if (!Peek(':')) return false;
      ++pos_;
      if (!Value(depth)) return false;
      if (Peek('}')) return ++pos_, true;
      if (!Peek(',')) return false;
      ++pos_;
    }
  }

  bool Array(std::size_t depth) {
    if (depth > kMaxDepth) return false;
    ++pos_;  // '['
    if (Peek(']')) return ++pos_, true;
    while (true) {
      if (!Value(depth)) return false;
      if (Peek(']')) return ++pos_, true;
      if (!Peek(',')) return false;
      ++pos_;
    }
  }

  bool String() {
    ++pos_;  // '"'
    while (pos_ < text_.size()) {
      const auto c = static_cast<unsigned char>(text_[pos_++]);
      if (c == '"') return true;
      if (c < 0x20 || c >= 0x80) return false;
      if (c == '\\') {
        if (AtEnd()) return false;
        switch (text_[pos_++]) {
          case '"':
          case '\\':
          case 'b':
          case 'f':
          case 'n':
          case 'r':
          case 't':
            break;
          default:
            return false;
        }
      }
    }
    return false;
  }

 private:
  bool Literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool Number() {
    const bool negative = Peek('-');
    if (negative) ++pos_;
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    const std::size_t digits = pos_ - start;
    if (digits == 0 || digits > kMaxDigits) return false;
    if (text_[start] == '0' && (digits > 1 || negative)) return false;  // 01, -0
    // A fraction or an exponent follows: not canonical (dump() may write it otherwise).
    return !(Peek('.') || Peek('e') || Peek('E'));
  }

  std::string_view text_;
  std::size_t pos_;
};

}  // namespace

bool IsCanonicalJson(std::string_view text) {
  Scanner scanner(text);
  return scanner.Value(0) && scanner.AtEnd();
}

bool IsCanonicalJsonObject(std::string_view text) {
  return !text.empty() && text.front() == '{' && IsCanonicalJson(text);
}

std::optional<std::string_view> CanonicalMember(std::string_view object, std::string_view key) {
  Scanner scanner(object, 1);  // after '{'
  if (scanner.Peek('}')) return std::nullopt;
  while (true) {
    const std::size_t key_start = scanner.pos();
    if (!scanner.Peek('"') || !scanner.String() || !scanner.Peek(':')) return std::nullopt;
    const std::string_view name =
        object.substr(key_start + 1, scanner.pos() - key_start - 2);  // between the quotes
    scanner.Skip();                                                   // ':'
    const std::size_t value_start = scanner.pos();
    if (!scanner.Value(1)) return std::nullopt;
    if (name == key) return object.substr(value_start, scanner.pos() - value_start);
    if (!scanner.Peek(',')) return std::nullopt;
    scanner.Skip();
  }
}

}  // namespace lichen::ipc
