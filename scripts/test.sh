#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, and runs the unit and
# integration tests (release build), again under ASan+UBSan, then replays every
# fuzz corpus. .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

logs=$(mktemp -d)
# The servers the tests talk to (dockerd, registries, s3rver). At exit, stop only those
# this run started, not ones that were already up.
before=$(scripts/services.sh list)
# A service that did not start fails its tests (with a message), not the whole run.
scripts/services.sh start || echo "test.sh: not every service started (see /run/lichen-services)" >&2
ours=$(comm -13 <(sort <<<"$before") <(scripts/services.sh list | sort) | tr '\n' ' ')
# shellcheck disable=SC2086 # $ours is a list of names
trap 'rm -rf "$logs"; [ -z "$ours" ] || scripts/services.sh stop $ours' EXIT
passed=0
failed=0
run_ctest() {  # run_ctest NAME BUILD_DIR
  local name=$1 dir=$2 rc=0
  echo "== $name tests"
  ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" 2>&1 | tee "$logs/$name" || rc=$?
  local line
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$logs/$name" | tail -1 || true)
  if [ -z "$line" ]; then
    echo "test.sh: $name: ctest printed no summary" >&2
    failed=$((failed + 1))
    return
  fi
  local total f
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  f=$(sed -E 's/.* ([0-9]+) tests failed.*/\1/' <<<"$line")
  passed=$((passed + total - f))
  failed=$((failed + f))
  # ctest lists failures after its summary; keep them for the last lines of the run,
  # which are what a CI log shows first.
  awk -v n="$name" '/The following tests FAILED:/ {on = 1; next}
    on && /^[[:space:]]+[0-9]+ - / {print "  " n ":" $0}' "$logs/$name" >>"$logs/failures" || true
  [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || failed=$((failed + 1))
}

echo "== build (release)"
scripts/build.sh release
run_ctest release build

echo "== build (asan+ubsan)"
scripts/build.sh asan
run_ctest asan build-asan

echo "== build (fuzz targets, clang 14)"
scripts/build.sh fuzz
run_ctest fuzz-replay build-fuzz

[ ! -s "$logs/failures" ] || { echo "failed tests:"; cat "$logs/failures"; }
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
