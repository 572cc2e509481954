// Differential test: Lichen's semver against npm's `semver` package (pinned in
// tools/semver-oracle). Every pair is checked for semver.valid(v), semver.validRange(r) (both
// validity and the desugared text) and semver.satisfies(v, r). Node runs once for all pairs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "semver/range.h"
#include "semver/version.h"

namespace lichen::semver {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSeed = 0x5e3e7'2024;
constexpr size_t kGeneratedRanges = 3000;
constexpr size_t kVersionsPerRange = 4;

struct Pair {
  std::string version;
  std::string range;
};

// SplitMix64: std:: distributions differ between standard libraries; this does not.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }
  template <typename T>
  T Pick(const std::vector<T>& v) {
    return v[Below(v.size())];
  }

 private:
  uint64_t state_;
};

// ---- Hand-picked edge cases --------------------------------------------------------------

// clang-format off
const std::vector<std::string>& EdgeRanges() {
  static const std::vector<std::string> kRanges = {
      // primitives, whitespace after operators, prefixes
      "1.0.0", "=1.0.0", "v1.0.0", "=v1.0.0", "v=1.0.0", "==1.0.0", ">1.0.0", ">=1.0.0",
      "<2.0.0", "<=2.0.0", ">= 1.0.0", ">=  1.0.0", "> 1.0.0", "<\t2.0.0", "< =1.0.0",
      "> = 1.0.0", "=> 1.0.0", "=<1.0.0", "<>1.0.0", ">=v1.2.3", ">= v1.2.3", ">=v 1.2.3",
      ">=0.0.0", ">= 0.0.0", ">=0.0.0-0", ">0.0.0", "<0.0.0", "<0.0.0-0", ">=01.02.03",
      ">1.0.0 <2.0.0", ">=1.2.1 1.2.3", "1.2.3 >=1.2.1", ">=1.2.3 >=1.2.1",
      // x-ranges, partials, stars
      "", " ", "*", "x", "X", "x.x", "x.x.x", "*.*.*", "1", "1.2", "1.x", "1.X", "1.*", "1.2.x",
      "1.2.*", "2.x.x", "1.x.3", "x.1.2", "*.9999999999999999999999", ">=*", "<*", ">*", "<=*",
      "=*", ">x", "<X", "<=7.x", "<=0.7.x", ">=0.7.x", "=0.7.x", ">1", ">1.2", "<1", "<1.2",
      ">=1", ">= 1", "< 1.2", "1.2.x-alpha", "1.2.x+build", "1.x-alpha", "01", "1.02", "**",
      "x *", "<x <* || >* 2.x", ">x 2.x || * || <x",
      // tilde
      "~1.2.3", "~1.2", "~1", "~0.0.1", "~x", "~>3.2.1", "~>1", "~> 1", "~ 1.0", "~ 1.0.3",
      "~v0.5.4-pre", "~1.2.3-beta.2", "~>>1.2.3", "~~1.2.3", "~1.2.3beta", "~ > 1.2.3",
      "~1.x", "~1.2.x", "~*", "~",
      // caret
      "^1.2.3", "^0.2.3", "^0.0.3", "^1.x", "^0.0", "^0.x", "^0", "^ 1", "^0.1", "^1.2",
      "^1.2 ^1", "^ 1.2 ^ 1", "^1.2.3-beta.4", "^0.0.1-beta", "^0.1.1-alpha", "^1.2.3+build",
      "^x", "^*", "^", "^^1", "^1.2.3 - 2", "^v1.2.3", "^=1.2.3", "^0.0.x", "^0.0.0",
      // hyphen ranges
      "1.0.0 - 2.0.0", "1 - 2", "1.0 - 2.0", "1.2 - 3.4.5", "1.2.3 - 3.4", "1.2 - 3.4",
      "x - 1.0.0", "x - 1.x", "1.0.0 - x", "1.x - x", "1.2.3-pre+asdf - 2.4.3-pre+asdf",
      "1.2.3+asdf - 2.4.3+asdf", "1.2.3 - 2.3.4 - 3", "1.2.3 -2.3.4", "1.2.3- 2.3.4",
      "1.2.3  -  2.3.4", "v1.2.3 - v2.3.4", "1.2.3 - v 2", "= 1.2.3 - 2", "- 1.2.3",
      "1.2.3 -", ">1.2.3 - 2", "1.2.3 - 2 >1",
      // unions
      "||", "1 ||", "|| 1", "1 || 2", "1||2", "1 |||| 2", "1 ||| 2", "1 | 2", "0.1.20 || 1.2.4",
      ">=0.2.3 || <0.0.1", "1.2.x || 2.x", "1.2.* || 2.*", "<0.0.0-0 || 1", "<0.0.0-0 || <x",
      "* || 1", "1 || * || 2", ">=1.2.3 <1.2.3",
      // prereleases in comparators
      ">1.2.3-alpha.3", ">=1.2.3-alpha <1.2.3", "1.2.3-alpha.7", ">=1.2.3-0", "<1.2.3-alpha",
      "1.2.3-01", "1.2.3-0a", "1.2.3-", "1.2.3-a..b", "1.2.3+", "1.2.3-a+b+c", "1.2.3-rc.1+b.2",
      ">1.2.3-9007199254740992", "<=1.2.3-9007199254740993", ">=1.0.0-99999999999999999998",
      // junk and limits
      "blerg", "git+https://user:password0123@github.com/foo", "1.2.3 foo", ">=1.2.3 bar 2",
      "9007199254740991", "9007199254740992", "^9007199254740991", "~9007199254740990",
      ">9007199254740990", "<=9007199254740990.x", "1.9007199254740991.x", "99999999999999999999",
      "x.99999999999999999999999", "\xc2\xa0^1.2.3\xe3\x80\x80",
      "^1.2.3\xef\xbb\xbf||\xe2\x80\xa8" "2", "1.2.3\xe2\x80\x8b", "\t\n>=1.2.3\r\n<2\t",
  };
  return kRanges;
}

const std::vector<std::string>& EdgeVersions() {
  static const std::vector<std::string> kVersions = {
      "0.0.0", "0.0.1", "0.0.2", "0.1.0", "0.1.2", "0.2.4", "0.7.2", "0.9.7", "1.0.0",
      "1.0.1", "1.2.3", "1.2.4", "1.3.0", "1.9999.9999", "2.0.0", "2.1.3", "2.4.3", "3.4.5",
      "1.2.3-alpha", "1.2.3-alpha.3", "1.2.3-alpha.7", "1.2.3-beta", "1.2.3-0", "1.2.3-pre.2",
      "1.2.4-alpha", "2.0.0-pre.0", "2.4.3-alpha", "0.0.1-beta", "0.1.1-beta", "1.0.0-rc1",
      "1.2.3+build", "1.2.3-9007199254740992", "1.2.3-9007199254740993",
      "1.0.0-99999999999999999999", "v1.2.3", " v1.2.3 ", "=1.2.3", "v=1.2.3", "V1.2.3",
      "1.2", "1", "01.2.3", "1.02.3", "1.2.3-01", "1.2.3-", "1.2.3+", "1.2.3.4", "",
      "9007199254740991.0.0", "9007199254740992.0.0", "\xc2\xa0" "1.2.3\xe3\x80\x80",
      "\xef\xbb\xbf" "2.0.0", "1.2.3\xe2\x80\x8b", "x.y.z", "1.2.3-a.b.c.d.e.f",
  };
  return kVersions;
}
// clang-format on

std::vector<Pair> EdgePairs() {
  std::vector<Pair> pairs;
  for (const auto& r : EdgeRanges()) {
    for (const auto& v : EdgeVersions()) {
      pairs.push_back({v, r});
    }
  }
  // The 256-character limit, exactly at and just past it, for versions and inside ranges.
  const auto pad_to = [](std::string head, size_t len) {
    head += "-";
    head.resize(len, 'a');
    return head;
  };
  for (size_t len : {255, 256, 257}) {
    const std::string v = pad_to("1.2.3", len);
    pairs.push_back({v, ">=1.2.3-0"});
    pairs.push_back({v, "<=" + v});
    pairs.push_back({"1.2.3", ">=" + v});
    pairs.push_back({"1.2.3", "^" + v});
    pairs.push_back({" " + v, "*"});
    pairs.push_back({v.substr(0, len - 2) + " \t", "*"});
  }
  for (size_t digits : {255, 256, 257, 258}) {
    const std::string big(digits, '9');
    pairs.push_back({"1.2.3", "x." + big});
    pairs.push_back({"1.2.3", "1.2.x-" + big});
    pairs.push_back({"1.2.3", "1.2.x-a" + std::string(digits - 5, 'b')});
    pairs.push_back({"1.2.3", "1.2.x+" + std::string(digits - 5, 'b')});
    pairs.push_back({"1.2.3", "~x." + big + ".1"});
  }
  return pairs;
}

// ---- Generated pairs ---------------------------------------------------------------------

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  std::vector<Pair> Pairs(size_t ranges, size_t versions_per_range) {
    std::vector<Pair> pairs;
    for (size_t i = 0; i < ranges; ++i) {
      anchors_.clear();
      const std::string range = MakeRange();
      for (size_t k = 0; k < versions_per_range; ++k) {
        pairs.push_back({MakeVersion(), range});
      }
    }
    return pairs;
  }

 private:
  struct Anchor {
    int major, minor, patch;
    bool prerelease;
  };

  std::string Number() {
    if (rng_.Chance(0.02)) {
      return rng_.Pick<std::string>({"9007199254740990", "9007199254740991", "9007199254740992",
                                     "99999999999999999999", "01", "00"});
    }
    return std::to_string(rng_.Pick<int>({0, 0, 1, 1, 1, 2, 2, 3, 10}));
  }

  std::string Identifier() {
    if (rng_.Chance(0.03)) {
      return rng_.Pick<std::string>(
          {"01", "", "0a", "-", "a-b", "9007199254740993", "x", "a_b", "A"});
    }
    return rng_.Pick<std::string>({"alpha", "beta", "rc", "0", "1", "2", "10", "pre"});
  }

  std::string Prerelease() {
    std::string out = Identifier();
    while (rng_.Chance(0.3)) {
      out += "." + Identifier();
    }
    return out;
  }

  std::string Wildcard() { return rng_.Pick<std::string>({"x", "X", "*"}); }

  // A full or partial version, maybe with wildcards, prerelease and build; records anchors.
  std::string Partial() {
    const size_t parts = rng_.Pick<size_t>({1, 2, 3, 3, 3, 3});
    std::string nums[3];
    bool wild = false;
    for (size_t i = 0; i < parts; ++i) {
      wild = wild || rng_.Chance(0.1);
      nums[i] = wild ? Wildcard() : Number();
    }
    std::string out = nums[0];
    for (size_t i = 1; i < parts; ++i) {
      out += "." + nums[i];
    }
    bool pre = false;
    if (parts == 3 && rng_.Chance(0.25)) {
      out += "-" + Prerelease();
      pre = true;
    }
    if (parts == 3 && rng_.Chance(0.08)) {
      out += "+" + rng_.Pick<std::string>({"build", "b.1", "001", "x-y"});
    }
    if (rng_.Chance(0.05)) {
      out = rng_.Pick<std::string>({"v", "=", "v=", "=v", "V"}) + out;
    }
    const auto to_int = [](const std::string& s) {
      return (s.empty() || s.size() > 4 || !std::isdigit(static_cast<unsigned char>(s[0])))
                 ? 0
                 : std::atoi(s.c_str());
    };
    anchors_.push_back({to_int(nums[0]), to_int(nums[1]), to_int(nums[2]), pre});
    return out;
  }

  std::string Space() {
    return rng_.Chance(0.9) ? " " : rng_.Pick<std::string>({"  ", "\t", " \n ", "\xc2\xa0"});
  }

  std::string Comparator() {
    std::string op =
        rng_.Pick<std::string>({"", "", "", "=", "<", "<=", ">", ">=", "~", "~>", "^", "^", "~"});
    if (!op.empty() && rng_.Chance(0.1)) {
      op += Space();
    }
    return op + Partial();
  }

  std::string Set() {
    if (rng_.Chance(0.15)) {
      const std::string sep =
          rng_.Chance(0.9) ? " - " : rng_.Pick<std::string>({"-", " -", "- ", "  -  ", " -- "});
      return Partial() + sep + Partial();
    }
    std::string out = Comparator();
    while (rng_.Chance(0.35)) {
      out += Space() + Comparator();
    }
    return out;
  }

  std::string Mutate(std::string s) {
    static const std::string kAlphabet = "0123456789.-+<>=~^ xX*v|ab";
    const size_t edits = 1 + rng_.Below(3);
    for (size_t i = 0; i < edits; ++i) {
      const size_t pos = rng_.Below(s.size() + 1);
      const char c = kAlphabet[rng_.Below(kAlphabet.size())];
      switch (rng_.Below(3)) {
        case 0:
          s.insert(s.begin() + static_cast<std::ptrdiff_t>(pos), c);
          break;
        case 1:
          if (pos < s.size()) {
            s.erase(pos, 1);
          }
          break;
        default:
          if (pos < s.size()) {
            s[pos] = c;
          }
          break;
      }
    }
    return s;
  }

  std::string MakeRange() {
    if (rng_.Chance(0.05)) {
      std::string junk;
      static const std::string kAlphabet = "0123456789.-+<>=~^ xX*v|ab";
      const size_t len = rng_.Below(16);
      for (size_t i = 0; i < len; ++i) {
        junk += kAlphabet[rng_.Below(kAlphabet.size())];
      }
      return junk;
    }
    std::string out = Set();
    while (rng_.Chance(0.25)) {
      out += rng_.Pick<std::string>({" || ", "||", " ||", "|| ", " || "}) + Set();
    }
    if (rng_.Chance(0.03)) {
      out = Space() + out + Space();
    }
    return rng_.Chance(0.1) ? Mutate(out) : out;
  }

  // A version near one of the range's anchors (so satisfies() is often true), or not.
  std::string MakeVersion() {
    if (rng_.Chance(0.08)) {
      return Mutate(Partial());
    }
    Anchor a{rng_.Pick<int>({0, 1, 2}), rng_.Pick<int>({0, 1, 2}), rng_.Pick<int>({0, 1, 2}),
             false};
    if (!anchors_.empty() && rng_.Chance(0.85)) {
      a = anchors_[rng_.Below(anchors_.size())];
    }
    int* fields[3] = {&a.major, &a.minor, &a.patch};
    if (rng_.Chance(0.6)) {
      int& f = *fields[rng_.Below(3)];
      f = std::max(0, f + rng_.Pick<int>({-1, 1, 1, 2}));
    }
    std::string out =
        std::to_string(a.major) + "." + std::to_string(a.minor) + "." + std::to_string(a.patch);
    if (rng_.Chance(a.prerelease ? 0.6 : 0.2)) {
      out += "-" + Prerelease();
    }
    if (rng_.Chance(0.05)) {
      out += "+b";
    }
    if (rng_.Chance(0.03)) {
      out = rng_.Pick<std::string>({"v", "=", " ", "\t"}) + out + rng_.Pick<std::string>({"", " "});
    }
    return out;
  }

  Rng rng_;
  std::vector<Anchor> anchors_;
};

// ---- Running the oracle ------------------------------------------------------------------

std::string Hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xF];
  }
  return out;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && access(candidate.c_str(), X_OK) == 0) {
      return candidate.string();
    }
  }
  return "";
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7F || c == '"' || c == '\\') {
      static constexpr char kDigits[] = "0123456789abcdef";
      out += "\\x";
      out += kDigits[c >> 4];
      out += kDigits[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  return "\"" + out + "\"";
}

struct Verdict {
  std::string valid;        // normalised version or "null"
  std::string valid_range;  // desugared range or "null"
  std::string satisfies;    // "1" or "0"
  bool operator==(const Verdict&) const = default;
};

Verdict Ours(const Pair& p) {
  const auto v = Version::Parse(p.version);
  const auto r = Range::Parse(p.range);
  return {v ? v->ToString() : "null", r ? r->ToString() : "null",
          (v && r && r->Satisfies(*v)) ? "1" : "0"};
}

TEST(semverDifferential, AgreesWithNpmSemver) {
  const char* source_dir = std::getenv("LICHEN_SOURCE_DIR");
  if (source_dir == nullptr) {
    GTEST_SKIP() << "LICHEN_SOURCE_DIR is not set (run through ctest)";
  }
  const fs::path oracle_dir = fs::path(source_dir) / "tools" / "semver-oracle";
  if (!fs::exists(oracle_dir / "node_modules" / "semver" / "package.json")) {
    GTEST_SKIP() << "npm semver is not installed: run `npm ci` in " << oracle_dir.string();
  }
  const std::string node = FindOnPath("node");
  if (node.empty()) {
    GTEST_SKIP() << "node is not on PATH; the differential test needs Node.js";
  }

  std::vector<Pair> pairs = EdgePairs();
  // Both knobs exist for longer local hunts; ctest uses the fixed defaults.
  size_t generated = kGeneratedRanges;
  if (const char* n = std::getenv("LICHEN_SEMVER_DIFF_RANGES")) {
    generated = static_cast<size_t>(std::strtoull(n, nullptr, 10));
  }
  uint64_t seed = kSeed;
  if (const char* s = std::getenv("LICHEN_SEMVER_DIFF_SEED")) {
    seed = std::strtoull(s, nullptr, 0);
  }
  for (auto& p : Generator(seed).Pairs(generated, kVersionsPerRange)) {
    pairs.push_back(std::move(p));
  }

  const fs::path work =
      fs::path(::testing::TempDir()) / ("semver-diff-" + std::to_string(getpid()));
  fs::create_directories(work);
  {
    std::ofstream in(work / "pairs.txt", std::ios::binary);
    for (const auto& p : pairs) {
      in << Hex(p.version) << '\t' << Hex(p.range) << '\n';
    }
  }
  const std::string command =
      ShellQuote(node) + " " + ShellQuote((oracle_dir / "oracle.js").string()) + " " +
      ShellQuote((work / "pairs.txt").string()) + " > " + ShellQuote((work / "npm.txt").string()) +
      " 2> " + ShellQuote((work / "npm.err").string());
  const int status = std::system(command.c_str());
  ASSERT_EQ(status, 0) << "oracle failed: " << command << "\n" << ReadFile(work / "npm.err");

  std::stringstream results(ReadFile(work / "npm.txt"));
  std::string line;
  ASSERT_TRUE(std::getline(results, line));
  const std::string npm_version = line;
  size_t disagreements = 0;
  size_t index = 0;
  size_t valid_versions = 0;
  size_t valid_ranges = 0;
  size_t satisfied = 0;
  std::ostringstream report;
  while (std::getline(results, line) && line.rfind("end ", 0) != 0) {
    ASSERT_LT(index, pairs.size()) << "oracle printed more results than pairs";
    std::stringstream fields(line);
    Verdict npm;
    std::getline(fields, npm.valid, '\t');
    std::getline(fields, npm.valid_range, '\t');
    std::getline(fields, npm.satisfies, '\t');
    const Pair& p = pairs[index++];
    valid_versions += npm.valid != "null";
    valid_ranges += npm.valid_range != "null";
    satisfied += npm.satisfies == "1";
    const Verdict ours = Ours(p);
    if (ours == npm) {
      continue;
    }
    if (++disagreements <= 25) {
      report << "  version " << Printable(p.version) << " range " << Printable(p.range)
             << "\n    npm:    valid=" << npm.valid << " validRange=" << npm.valid_range
             << " satisfies=" << npm.satisfies << "\n    lichen: valid=" << ours.valid
             << " validRange=" << ours.valid_range << " satisfies=" << ours.satisfies << "\n";
    }
  }
  ASSERT_EQ(line, "end " + std::to_string(pairs.size())) << "oracle output incomplete";
  ASSERT_EQ(index, pairs.size());
  fs::remove_all(work);

  std::cout << "oracle: npm " << npm_version << "; per npm: " << valid_versions
            << " valid versions, " << valid_ranges << " valid ranges, " << satisfied
            << " satisfied\n";
  if (disagreements > 0) {
    std::cout << "first disagreements:\n" << report.str();
  }
  std::cout << "semver differential: " << pairs.size() << " pairs, " << disagreements
            << " disagreements" << std::endl;
  EXPECT_EQ(disagreements, 0u);
}

}  // namespace
}  // namespace lichen::semver
