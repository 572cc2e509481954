// A port of npm semver 7.6's classes/range.js and classes/comparator.js (strict mode,
// includePrerelease=false). npm desugars a range by a fixed series of regex rewrites on the
// text, and its quirks (which spaces get removed, what a partial match leaves behind) decide
// validity, so this file keeps the same stages in the same order, each named after the JS
// function it mirrors. The regexes are matched by hand: every matcher below documents the
// safeRe pattern it implements and why the greedy path it takes is the one JS takes.
#include "semver/range.h"

#include <cstdlib>
#include <optional>
#include <unordered_set>
#include <utility>

#include "semver/npm_grammar.h"

namespace lichen::semver {
namespace {

using grammar::IsDigit;
using grammar::IsIdentChar;
using grammar::IsLetterOrHyphen;
using grammar::kMaxDigits;
using grammar::kMaxIdentChars;
using grammar::kNpos;
using grammar::Quote;
using grammar::RunLength;

constexpr std::string_view kNullSet = "<0.0.0-0";  // npm's "matches nothing" comparator

// After the first stage every run of JS whitespace is one ' ', so from then on `\s` is ' '.
bool IsSpace(char c) { return c == ' '; }
// `[v=\s]`, the prefix class of XRANGEPLAIN and LOOSEPLAIN.
bool IsPrefixChar(char c) { return c == 'v' || c == '=' || c == ' '; }

std::string_view Trim(std::string_view s) {
  const size_t begin = RunLength(s, 0, IsSpace);
  size_t end = s.size();
  while (end > begin && s[end - 1] == ' ') {
    --end;
  }
  return s.substr(begin, end - begin);
}

// JS `s.split(' ')`.
std::vector<std::string> SplitOnSpace(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t space = s.find(' ', start);
    out.emplace_back(s.substr(start, space - start));
    if (space == kNpos) {
      return out;
    }
    start = space + 1;
  }
}

// JS `s.split(/\s+/)`: leading or trailing spaces yield empty strings, as in JS.
std::vector<std::string> SplitOnSpaceRuns(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ' ') {
      out.emplace_back(s.substr(start, i - start));
      i += RunLength(s, i, IsSpace);
      start = i;
    } else {
      ++i;
    }
  }
  out.emplace_back(s.substr(start));
  return out;
}

std::string JoinWithSpace(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) {
      out += ' ';
    }
    out += parts[i];
  }
  return out;
}

// JS `+digits + 1`, exactly. Past 2^53 JS rounds, but any such number later fails SemVer's
// MAX_SAFE_INTEGER check in both implementations, so exact arithmetic agrees on validity.
std::string Increment(std::string_view digits) {
  std::string out(digits);
  size_t i = out.size();
  while (i > 0 && out[i - 1] == '9') {
    out[--i] = '0';
  }
  if (i == 0) {
    out.insert(out.begin(), '1');
  } else {
    ++out[i - 1];
  }
  return out;
}

// ---- XRANGEPLAIN, anchored at both ends ----------------------------------------------
// `[v=\s]*(XID)(?:\.(XID)(?:\.(XID)(?:-PRERELEASE)?(?:\+BUILD)?)?)?` with
// XID = `0|[1-9]\d{0,256}|x|X|\*`. Anchored, every capture is forced, so no backtracking
// choice can change them.
struct XParts {
  std::string_view major;
  std::optional<std::string_view> minor;
  std::optional<std::string_view> patch;
  std::optional<std::string_view> prerelease;
};

// npm's isX: a missing part, "x", "X" or "*".
bool IsX(std::optional<std::string_view> id) {
  return !id || *id == "x" || *id == "X" || *id == "*";
}

// One XID that must end where the caller's next token starts; kNpos if none.
size_t XidEndAnchored(std::string_view s, size_t pos) {
  if (pos >= s.size()) {
    return kNpos;
  }
  const char c = s[pos];
  if (c == 'x' || c == 'X' || c == '*' || c == '0') {
    return pos + 1;
  }
  if (c >= '1' && c <= '9') {
    const size_t len = RunLength(s, pos, IsDigit);
    return len <= kMaxDigits + 1 ? pos + len : kNpos;
  }
  return kNpos;
}

std::optional<XParts> MatchXRangePlain(std::string_view s) {
  size_t pos = RunLength(s, 0, IsPrefixChar);
  std::optional<std::string_view> ids[3];
  for (int i = 0; i < 3; ++i) {
    const size_t end = XidEndAnchored(s, pos);
    if (end == kNpos) {
      return std::nullopt;
    }
    ids[i] = s.substr(pos, end - pos);
    pos = end;
    if (pos == s.size()) {
      return XParts{*ids[0], ids[1], ids[2], std::nullopt};
    }
    if (i < 2) {
      if (s[pos] != '.') {
        return std::nullopt;
      }
      ++pos;
    }
  }
  const auto tail = grammar::MatchTail(s.substr(pos));
  if (!tail) {
    return std::nullopt;
  }
  XParts x{*ids[0], ids[1], ids[2], std::nullopt};
  if (!tail->prerelease.empty()) {
    x.prerelease = tail->prerelease;
  }
  return x;
}

// Length of a leading GTLT `((?:<|>)?=?)`. Taking it greedily is what JS does: what follows
// it can never start with '<' or '>', and a '=' left behind is absorbed by `[v=\s]*`.
size_t GtltLength(std::string_view s) {
  size_t pos = 0;
  if (pos < s.size() && (s[pos] == '<' || s[pos] == '>')) {
    ++pos;
  }
  if (pos < s.size() && s[pos] == '=') {
    ++pos;
  }
  return pos;
}

// ---- Stage: hyphenReplace ---------------------------------------------------------------
// HYPHENRANGE `^\s?(XRANGEPLAIN)\s-\s(XRANGEPLAIN)\s?$`. An XRANGEPLAIN holds spaces only in
// its leading `[v=\s]*` and '-' only after its first XID, so it never contains " - ": the
// separator can only be the first " - ".
std::string HyphenReplace(std::string_view r) {
  const size_t sep = r.find(" - ");
  if (sep == kNpos) {
    return std::string(r);
  }
  const std::string_view from_text = r.substr(0, sep);
  const std::string_view to_text = r.substr(sep + 3);
  const auto f = MatchXRangePlain(from_text);
  const auto t = MatchXRangePlain(to_text);
  if (!f || !t) {
    return std::string(r);
  }
  std::string from;
  if (IsX(f->major)) {
    from = "";
  } else if (IsX(f->minor)) {
    from = ">=" + std::string(f->major) + ".0.0";
  } else if (IsX(f->patch)) {
    from = ">=" + std::string(f->major) + "." + std::string(*f->minor) + ".0";
  } else {
    from = ">=" + std::string(from_text);
  }
  std::string to;
  if (IsX(t->major)) {
    to = "";
  } else if (IsX(t->minor)) {
    to = "<" + Increment(t->major) + ".0.0-0";
  } else if (IsX(t->patch)) {
    to = "<" + std::string(t->major) + "." + Increment(*t->minor) + ".0-0";
  } else if (t->prerelease) {
    to = "<=" + std::string(t->major) + "." + std::string(*t->minor) + "." +
         std::string(*t->patch) + "-" + std::string(*t->prerelease);
  } else {
    to = "<=" + std::string(to_text);
  }
  return std::string(Trim(from + " " + to));
}

// ---- Stage: COMPARATORTRIM --------------------------------------------------------------
// Global `(\s?)((?:<|>)?=?)\s?(LOOSEPLAIN|XRANGEPLAIN)` replaced by `$1$2$3`: deletes the
// one space between an operator and its version ("> 1.2.3" -> ">1.2.3"). The pattern is
// unanchored, so where each match ends decides where the next may start; the *End
// functions return the end of the match JS finds (its greedy path), or kNpos.

// PRERELEASEIDENTIFIERLOOSE `\d{1,256}|\d{0,256}[a-zA-Z-][a-zA-Z0-9-]{0,250}`. Nothing after
// it is mandatory, so the first alternative wins whenever it can take a digit.
size_t LooseIdEnd(std::string_view s, size_t pos) {
  if (pos >= s.size()) {
    return kNpos;
  }
  if (IsDigit(s[pos])) {
    return pos + RunLength(s, pos, IsDigit, kMaxDigits);
  }
  if (IsLetterOrHyphen(s[pos])) {
    return pos + 1 + RunLength(s, pos + 1, IsIdentChar, kMaxIdentChars);
  }
  return kNpos;
}

// Strict PRERELEASEIDENTIFIER `0|[1-9]\d{0,256}|\d{0,256}[a-zA-Z-][a-zA-Z0-9-]{0,250}`,
// unanchored: "0" alone wins even before more digits, as the first alternative.
size_t StrictIdEnd(std::string_view s, size_t pos) {
  if (pos >= s.size()) {
    return kNpos;
  }
  if (s[pos] == '0') {
    return pos + 1;
  }
  if (IsDigit(s[pos])) {
    return pos + 1 + RunLength(s, pos + 1, IsDigit, kMaxDigits);
  }
  if (IsLetterOrHyphen(s[pos])) {
    return pos + 1 + RunLength(s, pos + 1, IsIdentChar, kMaxIdentChars);
  }
  return kNpos;
}

// BUILDIDENTIFIER `[a-zA-Z0-9-]{1,250}`, unanchored.
size_t BuildIdEnd(std::string_view s, size_t pos) {
  const size_t len = RunLength(s, pos, IsIdentChar, kMaxIdentChars);
  return len == 0 ? kNpos : pos + len;
}

// `ID(?:\.ID)*` after a mandatory first ID, greedy: stops before a '.' not followed by an ID.
template <typename IdEnd>
size_t DottedEnd(std::string_view s, size_t pos, IdEnd id_end) {
  size_t end = id_end(s, pos);
  if (end == kNpos) {
    return kNpos;
  }
  while (end < s.size() && s[end] == '.') {
    const size_t next = id_end(s, end + 1);
    if (next == kNpos) {
      break;
    }
    end = next;
  }
  return end;
}

// `(?:\+BUILD)?`
size_t OptionalBuildEnd(std::string_view s, size_t pos) {
  if (pos < s.size() && s[pos] == '+') {
    const size_t end = DottedEnd(s, pos + 1, BuildIdEnd);
    if (end != kNpos) {
      return end;
    }
  }
  return pos;
}

// LOOSEPLAIN after its `[v=\s]*` prefix:
// `(\d{1,256})\.(\d{1,256})\.(\d{1,256})(?:-?(LOOSEID(?:\.LOOSEID)*))?(?:\+BUILD)?`.
size_t LooseBodyEnd(std::string_view s, size_t pos) {
  for (int i = 0; i < 2; ++i) {
    // The first two numbers must be followed by '.', so a run longer than 256 fails.
    const size_t len = RunLength(s, pos, IsDigit, kMaxDigits + 1);
    if (len == 0 || len > kMaxDigits || pos + len >= s.size() || s[pos + len] != '.') {
      return kNpos;
    }
    pos += len + 1;
  }
  const size_t len = RunLength(s, pos, IsDigit, kMaxDigits);
  if (len == 0) {
    return kNpos;
  }
  pos += len;
  // `-?` takes a '-' first; if no identifier follows it, JS backtracks and the '-' itself is
  // matched as a one-character identifier by `[a-zA-Z-]`.
  size_t pre = kNpos;
  if (pos < s.size() && s[pos] == '-') {
    pre = DottedEnd(s, pos + 1, LooseIdEnd);
  }
  if (pre == kNpos) {
    pre = DottedEnd(s, pos, LooseIdEnd);
  }
  if (pre != kNpos) {
    pos = pre;
  }
  return OptionalBuildEnd(s, pos);
}

// XRANGEPLAIN after its `[v=\s]*` prefix, unanchored.
size_t XRangeBodyEnd(std::string_view s, size_t pos) {
  const auto xid_end = [&](size_t p) -> size_t {
    if (p >= s.size()) {
      return kNpos;
    }
    const char c = s[p];
    if (c == 'x' || c == 'X' || c == '*' || c == '0') {
      return p + 1;
    }
    if (IsDigit(c)) {
      return p + 1 + RunLength(s, p + 1, IsDigit, kMaxDigits);
    }
    return kNpos;
  };
  size_t end = xid_end(pos);
  if (end == kNpos) {
    return kNpos;
  }
  if (end < s.size() && s[end] == '.') {
    if (const size_t minor = xid_end(end + 1); minor != kNpos) {
      end = minor;
      if (end < s.size() && s[end] == '.') {
        if (const size_t patch = xid_end(end + 1); patch != kNpos) {
          end = patch;
          if (end < s.size() && s[end] == '-') {
            if (const size_t pre = DottedEnd(s, end + 1, StrictIdEnd); pre != kNpos) {
              end = pre;
            }
          }
          end = OptionalBuildEnd(s, end);
        }
      }
    }
  }
  return end;
}

std::string ComparatorTrim(std::string_view s) {
  std::string out;
  size_t copied = 0;
  // Every start inside one `[v=\s]*` run reaches the same body, so remember the last one:
  // keeps long runs of 'v', '=' or spaces linear.
  size_t memo_at = kNpos;
  size_t memo_end = kNpos;
  size_t p = 0;
  while (p < s.size()) {
    // The greedy path: if it fails at p, every other path at p fails too, because each
    // optional piece it skips would have to be consumed by a later piece that cannot.
    size_t q = p + (s[p] == ' ' ? 1 : 0);
    q += GtltLength(s.substr(q));
    size_t space = kNpos;
    if (q < s.size() && s[q] == ' ') {
      space = q++;
    }
    const size_t body = q + RunLength(s, q, IsPrefixChar);
    if (body != memo_at) {
      memo_at = body;
      memo_end = LooseBodyEnd(s, body);
      if (memo_end == kNpos) {
        memo_end = XRangeBodyEnd(s, body);
      }
    }
    if (memo_end == kNpos) {
      ++p;
      continue;
    }
    if (space != kNpos) {
      out.append(s.substr(copied, space - copied));
      copied = space + 1;
    }
    p = memo_end;
  }
  out.append(s.substr(copied));
  return out;
}

// ---- Stages: TILDETRIM and CARETTRIM -----------------------------------------------------
// Global `(\s?)~>?\s` -> `$1~` ("~> 1.2" -> "~1.2": the '>' goes too) and `(\s?)\^\s` -> `$1^`.
std::string TildeTrim(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '~') {
      if (i + 1 < s.size() && s[i + 1] == ' ') {
        out += '~';
        i += 2;
        continue;
      }
      if (i + 2 < s.size() && s[i + 1] == '>' && s[i + 2] == ' ') {
        out += '~';
        i += 3;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

std::string CaretTrim(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '^' && i + 1 < s.size() && s[i + 1] == ' ') {
      out += '^';
      i += 2;
      continue;
    }
    out += s[i++];
  }
  return out;
}

// ---- Stage: parseComparator = replaceCarets, replaceTildes, replaceXRanges, replaceStars --

// CARET `^\^XRANGEPLAIN$`.
std::string ReplaceCaret(std::string_view comp) {
  if (comp.empty() || comp[0] != '^') {
    return std::string(comp);
  }
  const auto x = MatchXRangePlain(comp.substr(1));
  if (!x) {
    return std::string(comp);
  }
  const std::string major(x->major);
  if (IsX(x->major)) {
    return "";
  }
  if (IsX(x->minor)) {
    return ">=" + major + ".0.0 <" + Increment(major) + ".0.0-0";
  }
  const std::string minor(*x->minor);
  if (IsX(x->patch)) {
    if (major == "0") {
      return ">=0." + minor + ".0 <0." + Increment(minor) + ".0-0";
    }
    return ">=" + major + "." + minor + ".0 <" + Increment(major) + ".0.0-0";
  }
  const std::string patch(*x->patch);
  const std::string from = ">=" + major + "." + minor + "." + patch +
                           (x->prerelease ? "-" + std::string(*x->prerelease) : "");
  if (major == "0") {
    if (minor == "0") {
      return from + " <0.0." + Increment(patch) + "-0";
    }
    return from + " <0." + Increment(minor) + ".0-0";
  }
  return from + " <" + Increment(major) + ".0.0-0";
}

// TILDE `^~>?XRANGEPLAIN$`.
std::string ReplaceTilde(std::string_view comp) {
  if (comp.empty() || comp[0] != '~') {
    return std::string(comp);
  }
  const size_t start = (comp.size() > 1 && comp[1] == '>') ? 2 : 1;
  const auto x = MatchXRangePlain(comp.substr(start));
  if (!x) {
    return std::string(comp);
  }
  const std::string major(x->major);
  if (IsX(x->major)) {
    return "";
  }
  if (IsX(x->minor)) {
    return ">=" + major + ".0.0 <" + Increment(major) + ".0.0-0";
  }
  const std::string minor(*x->minor);
  const std::string upper = " <" + major + "." + Increment(minor) + ".0-0";
  if (IsX(x->patch)) {
    return ">=" + major + "." + minor + ".0" + upper;
  }
  return ">=" + major + "." + minor + "." + std::string(*x->patch) +
         (x->prerelease ? "-" + std::string(*x->prerelease) : "") + upper;
}

// XRANGE `^GTLT\s?XRANGEPLAIN$`.
std::string ReplaceXRange(std::string_view comp) {
  comp = Trim(comp);
  const size_t gtlt_len = GtltLength(comp);
  std::string gtlt(comp.substr(0, gtlt_len));
  size_t pos = gtlt_len;
  if (pos < comp.size() && comp[pos] == ' ') {
    ++pos;
  }
  const auto x = MatchXRangePlain(comp.substr(pos));
  if (!x) {
    return std::string(comp);
  }
  const bool x_major = IsX(x->major);
  const bool x_minor = x_major || IsX(x->minor);
  const bool x_patch = x_minor || IsX(x->patch);
  if (gtlt == "=" && x_patch) {
    gtlt = "";
  }
  if (x_major) {
    return (gtlt == ">" || gtlt == "<") ? std::string(kNullSet) : "*";
  }
  std::string major(x->major);
  if (!gtlt.empty() && x_patch) {
    std::string minor = x_minor ? "0" : std::string(*x->minor);
    if (gtlt == ">") {
      // >1 => >=2.0.0, >1.2 => >=1.3.0
      gtlt = ">=";
      if (x_minor) {
        major = Increment(major);
      } else {
        minor = Increment(minor);
      }
    } else if (gtlt == "<=") {
      // <=0.7.x is <0.8.0-0: every 0.7.x must pass.
      gtlt = "<";
      if (x_minor) {
        major = Increment(major);
      } else {
        minor = Increment(minor);
      }
    }
    return gtlt + major + "." + minor + ".0" + (gtlt == "<" ? "-0" : "");
  }
  if (x_minor) {
    return ">=" + major + ".0.0 <" + Increment(major) + ".0.0-0";
  }
  if (x_patch) {
    const std::string minor(*x->minor);
    return ">=" + major + "." + minor + ".0 <" + major + "." + Increment(minor) + ".0-0";
  }
  return std::string(comp);
}

// Applies `fn` to each whitespace-separated piece and rejoins, like the JS helpers.
template <typename Fn>
std::string MapPieces(std::string_view s, Fn fn) {
  std::vector<std::string> pieces = SplitOnSpaceRuns(s);
  for (auto& piece : pieces) {
    piece = fn(piece);
  }
  return JoinWithSpace(pieces);
}

// STAR `(<|>)?=?\s?\*`, first match only, removed.
std::string ReplaceStars(std::string_view comp) {
  comp = Trim(comp);
  for (size_t p = 0; p < comp.size(); ++p) {
    size_t q = p;
    if (comp[q] == '<' || comp[q] == '>') {
      ++q;
    }
    if (q < comp.size() && comp[q] == '=') {
      ++q;
    }
    if (q < comp.size() && comp[q] == ' ') {
      ++q;
    }
    if (q < comp.size() && comp[q] == '*') {
      return std::string(comp.substr(0, p)) + std::string(comp.substr(q + 1));
    }
  }
  return std::string(comp);
}

std::string ParseComparator(std::string_view comp) {
  std::string s = MapPieces(Trim(comp), ReplaceCaret);
  s = MapPieces(Trim(s), ReplaceTilde);
  s = MapPieces(s, ReplaceXRange);
  return ReplaceStars(s);
}

// ">=0.0.0" is "*" (GTE0).
std::string ReplaceGte0(std::string_view comp) {
  comp = Trim(comp);
  return comp == ">=0.0.0" ? std::string() : std::string(comp);
}

// JS `range.trim().replace(/\s+/g, ' ')`.
std::string NormalizeWhitespace(std::string_view text) {
  const std::string_view s = grammar::JsTrim(text);
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (size_t n = grammar::JsSpaceAt(s, i)) {
      while (n != 0) {
        i += n;
        n = grammar::JsSpaceAt(s, i);
      }
      out += ' ';
    } else {
      out += s[i++];
    }
  }
  return out;
}

// npm's compareIdentifiers for two different identifiers. Numeric ones compare as JS
// numbers (doubles), so two that differ only past 2^53 are *equal*, as in npm.
int CompareIdentifiers(const std::string& a, const std::string& b) {
  const bool a_num = RunLength(a, 0, IsDigit) == a.size();
  const bool b_num = RunLength(b, 0, IsDigit) == b.size();
  if (a_num && b_num) {
    const double x = std::strtod(a.c_str(), nullptr);
    const double y = std::strtod(b.c_str(), nullptr);
    return x == y ? 0 : (x < y ? -1 : 1);
  }
  if (a_num != b_num) {
    return a_num ? -1 : 1;
  }
  return a < b ? -1 : 1;
}

// npm's SemVer.compare. It differs from operator<=> only for numeric prerelease identifiers
// beyond 2^53, where npm loses precision; Satisfies must agree with npm there too.
int NpmCompare(const Version& a, const Version& b) {
  if (a.major != b.major) {
    return a.major < b.major ? -1 : 1;
  }
  if (a.minor != b.minor) {
    return a.minor < b.minor ? -1 : 1;
  }
  if (a.patch != b.patch) {
    return a.patch < b.patch ? -1 : 1;
  }
  if (a.prerelease.empty() || b.prerelease.empty()) {
    return a.prerelease.empty() == b.prerelease.empty() ? 0 : (a.prerelease.empty() ? 1 : -1);
  }
  for (size_t i = 0;; ++i) {
    const bool a_end = i >= a.prerelease.size();
    const bool b_end = i >= b.prerelease.size();
    if (a_end || b_end) {
      return a_end == b_end ? 0 : (a_end ? -1 : 1);
    }
    if (a.prerelease[i] != b.prerelease[i]) {
      return CompareIdentifiers(a.prerelease[i], b.prerelease[i]);
    }
  }
}

}  // namespace

std::string Range::Comparator::Text() const { return any ? "" : op + version.ToString(); }

Result<Range::ComparatorSet> Range::ParseSet(std::string_view text) {
  std::string s = HyphenReplace(text);
  s = ComparatorTrim(s);
  s = TildeTrim(s);
  s = CaretTrim(s);
  std::vector<std::string> pieces = SplitOnSpace(s);
  for (auto& piece : pieces) {
    piece = ParseComparator(piece);
  }
  std::vector<std::string> tokens = SplitOnSpaceRuns(JoinWithSpace(pieces));
  // npm builds every comparator before looking at any, so an invalid one always wins.
  ComparatorSet parsed;
  parsed.reserve(tokens.size());
  for (const auto& raw : tokens) {
    const std::string token = ReplaceGte0(raw);
    Comparator c;
    if (token.empty()) {
      c.any = true;
      parsed.push_back(std::move(c));
      continue;
    }
    // COMPARATOR `^GTLT\s?(FULLPLAIN)$`, then `new SemVer(version)`.
    const size_t gtlt = GtltLength(token);
    auto version = Version::Parse(std::string_view(token).substr(gtlt));
    if (!version) {
      return MakeError("invalid comparator " + Quote(token));
    }
    c.op = token.substr(0, gtlt);
    if (c.op == "=") {
      c.op.clear();
    }
    c.version = std::move(*version);
    parsed.push_back(std::move(c));
  }
  ComparatorSet set;  // distinct by text, in first-seen order
  std::unordered_set<std::string> seen;
  for (auto& c : parsed) {
    std::string key = c.Text();
    if (key == kNullSet) {
      return ComparatorSet{std::move(c)};
    }
    if (seen.insert(std::move(key)).second) {
      set.push_back(std::move(c));
    }
  }
  if (set.size() > 1) {
    std::erase_if(set, [](const Comparator& c) { return c.any; });
  }
  return set;
}

Result<Range> Range::Parse(std::string_view text) {
  const std::string raw = NormalizeWhitespace(text);
  Range range;
  size_t start = 0;
  while (true) {
    const size_t bar = raw.find("||", start);
    const std::string_view part =
        std::string_view(raw).substr(start, bar == kNpos ? kNpos : bar - start);
    auto set = ParseSet(Trim(part));
    if (!set) {
      return MakeError("invalid range " + Quote(text) + ": " + set.error().message);
    }
    range.sets_.push_back(std::move(*set));
    if (bar == kNpos) {
      break;
    }
    start = bar + 2;
  }
  if (range.sets_.size() > 1) {
    // Drop sets that match nothing (keeping one if all do); a "*" set swallows the rest.
    const auto is_null = [](const ComparatorSet& s) { return s[0].Text() == kNullSet; };
    std::vector<ComparatorSet> kept;
    for (auto& s : range.sets_) {
      if (!is_null(s)) {
        kept.push_back(std::move(s));
      }
    }
    if (kept.empty()) {
      kept.push_back(std::move(range.sets_[0]));
    } else if (kept.size() > 1) {
      for (auto& s : kept) {
        if (s.size() == 1 && s[0].any) {
          kept = {std::move(s)};
          break;
        }
      }
    }
    range.sets_ = std::move(kept);
  }
  return range;
}

bool Range::Test(const Comparator& c, const Version& v) {
  if (c.any) {
    return true;
  }
  const int cmp = NpmCompare(v, c.version);
  if (c.op.empty()) {
    return cmp == 0;
  }
  if (c.op == "<") {
    return cmp < 0;
  }
  if (c.op == "<=") {
    return cmp <= 0;
  }
  if (c.op == ">") {
    return cmp > 0;
  }
  return cmp >= 0;  // ">="
}

bool Range::Satisfies(const Version& version) const {
  for (const auto& set : sets_) {
    bool all = true;
    for (const auto& c : set) {
      all = all && Test(c, version);
    }
    if (!all) {
      continue;
    }
    if (version.prerelease.empty()) {
      return true;
    }
    // A prerelease passes only through a comparator that opts into its exact M.m.p.
    for (const auto& c : set) {
      if (!c.any && !c.version.prerelease.empty() && c.version.major == version.major &&
          c.version.minor == version.minor && c.version.patch == version.patch) {
        return true;
      }
    }
  }
  return false;
}

std::string Range::ToString() const {
  std::string out;
  for (size_t i = 0; i < sets_.size(); ++i) {
    if (i > 0) {
      out += "||";
    }
    for (size_t k = 0; k < sets_[i].size(); ++k) {
      if (k > 0) {
        out += ' ';
      }
      out += sets_[i][k].Text();
    }
  }
  return out.empty() ? "*" : out;
}

}  // namespace lichen::semver
