#include "deploy/resolver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace lichen::deploy {
namespace {

using ::testing::HasSubstr;

semver::Version V(const char* text) { return *semver::Version::Parse(text); }

Candidate C(const char* version, std::map<std::string, Requirement> deps = {}) {
  return Candidate{V(version), std::move(deps)};
}

Requirement Hard(const char* range) { return {range, DependencyType::kHard}; }
Requirement Soft(const char* range) { return {range, DependencyType::kSoft}; }

std::map<std::string, std::string> Versions(const Resolution& r) {
  std::map<std::string, std::string> out;
  for (const auto& [name, v] : r.versions) {
    out[name] = v.ToString();
  }
  return out;
}

std::string ErrorOf(const Result<Resolution>& r) {
  EXPECT_FALSE(r.ok()) << "resolved unexpectedly";
  return r.ok() ? "" : r.error().message;
}

TEST(resolver, PicksNewestVersionSatisfyingTheRoot) {
  const Catalog catalog = {{"A", {C("1.0.0"), C("2.0.0"), C("1.1.0"), C("1.2.0-beta.1")}}};
  auto r = Resolve({{"A", "^1"}}, catalog);
  ASSERT_TRUE(r.ok()) << r.error().message;
  // 1.2.0-beta.1 is newer but a prerelease never satisfies a plain range (npm semantics).
  EXPECT_EQ(Versions(*r), (std::map<std::string, std::string>{{"A", "1.1.0"}}));

  r = Resolve({{"A", "=1.0.0"}}, catalog);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Versions(*r).at("A"), "1.0.0");

  r = Resolve({{"A", "*"}}, catalog);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Versions(*r).at("A"), "2.0.0");
}

TEST(resolver, EmptyDeploymentResolvesToNothing) {
  const auto r = Resolve({}, Catalog{{"A", {C("1.0.0")}}});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->versions.empty());
  EXPECT_TRUE(r->dependencies.empty());
}

TEST(resolver, TransitiveClosureCarriesEdgeTypes) {
  const Catalog catalog = {
      {"App", {C("1.0.0", {{"Lib", Hard("^1")}, {"Metrics", Soft("~2.1")}})}},
      {"Lib", {C("1.0.0", {{"Base", Hard(">=0.5")}}), C("1.4.0", {{"Base", Hard(">=0.5")}})}},
      {"Metrics", {C("2.1.7"), C("2.2.0")}},
      {"Base", {C("0.4.0"), C("0.9.1")}},
      {"Unrelated", {C("1.0.0")}},
  };
  const auto r = Resolve({{"App", "1.0.0"}}, catalog);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Versions(*r),
            (std::map<std::string, std::string>{
                {"App", "1.0.0"}, {"Lib", "1.4.0"}, {"Metrics", "2.1.7"}, {"Base", "0.9.1"}}));
  EXPECT_EQ(r->dependencies.at("App"),
            (std::map<std::string, DependencyType>{{"Lib", DependencyType::kHard},
                                                   {"Metrics", DependencyType::kSoft}}));
  EXPECT_EQ(r->dependencies.at("Lib"),
            (std::map<std::string, DependencyType>{{"Base", DependencyType::kHard}}));
  EXPECT_TRUE(r->dependencies.at("Metrics").empty());
  EXPECT_TRUE(r->dependencies.at("Base").empty());
}

TEST(resolver, DiamondTakesNewestVersionMeetingBothSides) {
  const Catalog catalog = {
      {"A", {C("1.0.0", {{"B", Hard("^1")}, {"C", Hard("^1")}})}},
      {"B", {C("1.0.0", {{"D", Hard("^1.2")}})}},
      {"C", {C("1.0.0", {{"D", Soft("<1.5")}})}},
      {"D", {C("1.1.0"), C("1.3.0"), C("1.6.0"), C("2.0.0")}},
  };
  const auto r = Resolve({{"A", "^1"}}, catalog);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Versions(*r).at("D"), "1.3.0");
  EXPECT_EQ(r->dependencies.at("B").at("D"), DependencyType::kHard);
  EXPECT_EQ(r->dependencies.at("C").at("D"), DependencyType::kSoft);
}

TEST(resolver, RootRequirementsOnADependencyCount) {
  // Both the root and App constrain Lib: the newest satisfying both wins.
  const Catalog catalog = {
      {"App", {C("1.0.0", {{"Lib", Hard(">=1.0.0")}})}},
      {"Lib", {C("1.0.0"), C("1.5.0"), C("2.0.0")}},
  };
  const auto r = Resolve({{"App", "^1"}, {"Lib", "<2"}}, catalog);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Versions(*r).at("Lib"), "1.5.0");
}

TEST(resolver, BacktracksToAnOlderRequirerWhoseDependenciesFit) {
  // A@2 needs B ^2, but the deployment pins B to ^1: A must fall back to 1.x.
  const Catalog catalog = {
      {"A", {C("1.0.0", {{"B", Hard("^1")}}), C("2.0.0", {{"B", Hard("^2")}})}},
      {"B", {C("1.0.0"), C("2.0.0")}},
  };
  const auto r = Resolve({{"A", "*"}, {"B", "^1"}}, catalog);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Versions(*r), (std::map<std::string, std::string>{{"A", "1.0.0"}, {"B", "1.0.0"}}));
}

TEST(resolver, BacktracksWhenANewerVersionNeedsSomethingMissing) {
  const Catalog catalog = {
      {"A", {C("1.0.0"), C("1.1.0", {{"Gone", Hard("^1")}})}},
  };
  const auto r = Resolve({{"A", "^1"}}, catalog);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Versions(*r), (std::map<std::string, std::string>{{"A", "1.0.0"}}));
  EXPECT_TRUE(r->dependencies.at("A").empty());  // the dropped version's edges are gone too
}

TEST(resolver, RevisitsAnEarlierChoiceWhenALaterRequirerRejectsIt) {
  // "Base" is decided before "Zed" (name order) and gets 2.0.0; Zed then needs ^1.
  const Catalog catalog = {
      {"Base", {C("1.0.0"), C("1.9.0"), C("2.0.0")}},
      {"Zed", {C("1.0.0", {{"Base", Hard("^1")}})}},
  };
  const auto r = Resolve({{"Base", ">=1"}, {"Zed", "1.0.0"}}, catalog);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Versions(*r).at("Base"), "1.9.0");
}

TEST(resolver, MissingRootComponent) {
  const std::string e = ErrorOf(Resolve({{"X", "^1"}}, Catalog{}));
  EXPECT_EQ(e, "component X required by deployment (range ^1) is not available");
}

TEST(resolver, MissingDependency) {
  const Catalog catalog = {{"A", {C("1.0.0", {{"X", Hard("~1.2")}})}}};
  const std::string e = ErrorOf(Resolve({{"A", "1.0.0"}}, catalog));
  EXPECT_EQ(e, "component X required by A@1.0.0 (range ~1.2) is not available");
}

TEST(resolver, ConflictingRequirersAreAllNamed) {
  const Catalog catalog = {
      {"A", {C("1.0.0", {{"X", Hard("^1.0")}})}},
      {"B", {C("1.0.0", {{"X", Hard(">=2.0")}})}},
      {"X", {C("2.1.0"), C("1.0.0")}},
  };
  const std::string e = ErrorOf(Resolve({{"A", "=1.0.0"}, {"B", "=1.0.0"}}, catalog));
  EXPECT_EQ(e,
            "no version of X satisfies all requirers: A@1.0.0 requires ^1.0, B@1.0.0 requires "
            ">=2.0; available: 1.0.0, 2.1.0");
}

TEST(resolver, NoVersionSatisfiesTheRoot) {
  const Catalog catalog = {{"A", {C("1.0.0"), C("2.0.0")}}};
  const std::string e = ErrorOf(Resolve({{"A", "^3"}}, catalog));
  EXPECT_EQ(e,
            "no version of A satisfies all requirers: deployment requires ^3; available: "
            "1.0.0, 2.0.0");
}

TEST(resolver, InvalidRootRange) {
  const Catalog catalog = {{"A", {C("1.0.0")}}};
  const std::string e = ErrorOf(Resolve({{"A", "1.0.0.0"}}, catalog));
  EXPECT_THAT(e, HasSubstr("invalid version requirement \"1.0.0.0\" on A in deployment"));
}

TEST(resolver, InvalidDependencyRange) {
  const Catalog catalog = {
      {"A", {C("1.0.0", {{"B", Hard(">= one")}})}},
      {"B", {C("1.0.0")}},
  };
  const std::string e = ErrorOf(Resolve({{"A", "*"}}, catalog));
  EXPECT_THAT(e, HasSubstr("invalid version requirement \">= one\" on B in A@1.0.0"));
}

TEST(resolver, TwoComponentCycle) {
  const Catalog catalog = {
      {"A", {C("1.0.0", {{"B", Hard("^1")}})}},
      {"B", {C("1.0.0", {{"A", Soft("^1")}})}},
  };
  EXPECT_EQ(ErrorOf(Resolve({{"A", "^1"}}, catalog)), "dependency cycle: A -> B -> A");
  // The message does not depend on where the search entered the cycle.
  EXPECT_EQ(ErrorOf(Resolve({{"B", "^1"}}, catalog)), "dependency cycle: A -> B -> A");
}

TEST(resolver, LongerCycleAndSelfDependency) {
  const Catalog cycle = {
      {"A", {C("1.0.0", {{"B", Hard("*")}})}},
      {"B", {C("1.0.0", {{"C", Hard("*")}})}},
      {"C", {C("1.0.0", {{"A", Hard("*")}})}},
  };
  EXPECT_EQ(ErrorOf(Resolve({{"C", "*"}}, cycle)), "dependency cycle: A -> B -> C -> A");
  const Catalog self = {{"A", {C("1.0.0", {{"A", Hard("*")}})}}};
  EXPECT_EQ(ErrorOf(Resolve({{"A", "*"}}, self)), "dependency cycle: A -> A");
}

TEST(resolver, CycleInNewestVersionFallsBackToAnAcyclicOne) {
  const Catalog catalog = {
      {"A", {C("1.0.0"), C("2.0.0", {{"B", Hard("*")}})}},
      {"B", {C("1.0.0", {{"A", Hard("*")}})}},
  };
  const auto r = Resolve({{"A", "*"}}, catalog);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Versions(*r), (std::map<std::string, std::string>{{"A", "1.0.0"}}));
}

TEST(resolver, StepBoundStopsAHopelessSearch) {
  // Every X version requires a Y the catalog lacks, so the search must try each of them.
  Catalog catalog;
  for (int i = 0; i < 40; ++i) {
    const std::string v = "1.0." + std::to_string(i);
    catalog["X"].push_back(C(v.c_str(), {{"Y", Hard("^2")}}));
    catalog["Y"].push_back(C(v.c_str()));
  }
  const std::string e = ErrorOf(Resolve({{"X", "*"}, {"Y", "*"}}, catalog, /*max_steps=*/25));
  EXPECT_THAT(e, HasSubstr("gave up after 25 steps"));
  // With the default bound the same search completes and explains the conflict.
  EXPECT_THAT(ErrorOf(Resolve({{"X", "*"}, {"Y", "*"}}, catalog)),
              HasSubstr("no version of Y satisfies all requirers"));
}

TEST(resolver, MissingDependencyIsFoundWithoutTryingEveryCombination) {
  // Twelve unrelated components with four versions each: 4^12 combinations. The failure does
  // not depend on them, so the search must not walk them (it would exceed the bound).
  Catalog catalog;
  std::map<std::string, std::string> roots;
  for (int i = 0; i < 12; ++i) {
    const std::string name = "Comp" + std::string(1, static_cast<char>('A' + i));
    for (const char* v : {"1.0.0", "1.1.0", "1.2.0", "1.3.0"}) {
      catalog[name].push_back(C(v));
    }
    roots[name] = "^1";
  }
  catalog["Zz"] = {C("1.0.0", {{"Gone", Hard("*")}})};
  roots["Zz"] = "*";
  EXPECT_EQ(ErrorOf(Resolve(roots, catalog, /*max_steps=*/1000)),
            "component Gone required by Zz@1.0.0 (range *) is not available");
}

TEST(resolver, DeterministicRegardlessOfCatalogOrder) {
  Catalog catalog = {
      {"A",
       {C("1.0.0", {{"B", Hard("^1")}}), C("1.2.0", {{"B", Hard("~1.1")}}),
        C("1.1.0", {{"B", Hard("^1")}})}},
      {"B", {C("1.0.0"), C("1.1.5"), C("1.1.2"), C("1.3.0")}},
  };
  const auto first = Resolve({{"A", "^1"}}, catalog);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(Versions(*first), (std::map<std::string, std::string>{{"A", "1.2.0"}, {"B", "1.1.5"}}));
  for (int round = 0; round < 5; ++round) {
    for (auto& [name, candidates] : catalog) {
      std::rotate(candidates.begin(), candidates.begin() + 1, candidates.end());
    }
    const auto again = Resolve({{"A", "^1"}}, catalog);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(Versions(*again), Versions(*first));
    EXPECT_EQ(again->dependencies, first->dependencies);
  }
}

}  // namespace
}  // namespace lichen::deploy
