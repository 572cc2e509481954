#!/usr/bin/env bash
# Docker container components, measured on the real daemon:
#   1. time from `greengrass-cli deployment create` to the container's first output line,
#      against `docker run` of the same image typed by hand (same run, alternating);
#   2. pull throughput of a docker: artifact (Lichen through the Engine API) against
#      `docker pull` of the same image from the local registry;
#   3. the daemon's memory (VmRSS) and threads while N container components run.
# Needs a release build (scripts/build.sh release) and the local services
# (scripts/services.sh start). Usage: bench/docker_bench.sh [--runs N] [--containers N]
# [--size-mb N]. Prints one block per measurement; figures go to docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5
containers=20
size_mb=200
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --containers) containers=$2; shift 2 ;;
    --size-mb) size_mb=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--containers N] [--size-mb N]" >&2; exit 2 ;;
  esac
done

lichen=$PWD/build/src/cli/lichen
[ -x "$lichen" ] || { echo "build first: scripts/build.sh release" >&2; exit 1; }
docker version >/dev/null 2>&1 || { echo "dockerd is not up: scripts/services.sh start" >&2; exit 1; }

work=$(mktemp -d /tmp/lichen-docker-bench.XXXXXX)
root=$work/root
mkdir -p "$root" "$work/recipes"
image=lichen-bench/busybox:1
tests/docker/make_test_image.sh "$image" >/dev/null
cat >"$work/config.yaml" <<'EOF'
services:
  aws.greengrass.Nucleus:
    configuration:
      runWithDefault:
        posixUser: "root"
      logging:
        level: "INFO"
        format: "TEXT"
      lichen:
        stopGraceMs: 2000
        docker:
          pullAttempts: 1
EOF
"$lichen" nucleus --root "$root" --config "$work/config.yaml" >"$work/nucleus.out" 2>&1 &
nucleus=$!
cleanup() {
  kill -TERM "$nucleus" 2>/dev/null && wait "$nucleus" 2>/dev/null || true
  docker ps -aq --filter name=lichen-bench- | xargs -r docker rm -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 200); do
  [ -f "$root/cli_ipc_info/lichen_cli" ] && break
  sleep 0.05
done
export LICHEN_ROOT=$root
cli() { "$lichen" "$@"; }

now_us() { echo $(($(date +%s%N) / 1000)); }
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
recipe() {  # recipe NAME VERSION BODY
  printf "RecipeFormatVersion: '2020-01-25'\nComponentName: %s\nComponentVersion: '%s'\n%s\n" \
    "$1" "$2" "$3" >"$work/recipes/$1-$2.yaml"
}
# Waits (bounded: 60 s) until FILE holds TEXT. Follows the file (tail -F, woken by inotify;
# a file not there yet is looked for every 5 ms, with a stat, not a fork)
# rather than polling: a polling loop would take a core from dockerd and the docker CLI
# while they start the component's container, and only on Lichen's side.
wait_for_text() {
  local file=$1 text=$2 line found=1 tail_pid
  exec {fd}< <(exec tail -s 0.005 -n +1 -F "$file" 2>/dev/null)
  tail_pid=$!
  while IFS= read -r -t 60 line <&"$fd"; do
    if [[ $line == *"$text"* ]]; then found=0; break; fi
  done
  kill "$tail_pid" 2>/dev/null || true
  exec {fd}<&-
  return "$found"
}

# The daemon's own time of a container's start event, in microseconds: where the two paths
# stop differing (what follows, the echo, is the same process in the same image).
started_us() {  # started_us CONTAINER SINCE_US
  local ns
  ns=$(docker events --since "$(($2 / 1000000))" --until "$(date +%s.%N)" \
    --filter "container=$1" --filter event=start --format '{{.TimeNano}}' | head -n 1)
  echo $((ns / 1000))
}

echo "== 1. deployment create -> first container output, against docker run (runs: $runs)"
: >"$work/by_hand"
: >"$work/by_lichen"
: >"$work/start_hand"
: >"$work/start_lichen"
: >"$work/run_lichen"
for i in $(seq "$runs"); do
  t0=$(now_us)
  docker run --rm --name "lichen-bench-hand-$i" "$image" echo "ready-hand-$i" | head -n 1 >/dev/null
  echo $(($(now_us) - t0)) >>"$work/by_hand"
  echo $(($(started_us "lichen-bench-hand-$i" "$t0") - t0)) >>"$work/start_hand"

  name=com.example.Bench$i
  recipe "$name" 1.0.0 "Manifests:
  - Lifecycle:
      Run: docker run --rm --name lichen-bench-c-$i $image echo ready-lichen-$i"
  t0=$(now_us)
  cli deployment create -r "$work/recipes" -m "$name=1.0.0" >/dev/null
  wait_for_text "$root/logs/$name.log" "ready-lichen-$i" || { echo "no output from $name" >&2; exit 1; }
  echo $(($(now_us) - t0)) >>"$work/by_lichen"
  echo $(($(started_us "lichen-bench-c-$i" "$t0") - t0)) >>"$work/start_lichen"
  # When the Run step's shell started (greengrass.log, millisecond stamps): the split
  # between the deployment and `docker run` through the component's socket.
  line=$(grep -F "$name" "$root/logs/greengrass.log" | grep -F "newState=STARTING" | head -n 1)
  echo $(($(date -d "$(cut -d' ' -f1 <<<"$line")" +%s%6N) - t0)) >>"$work/run_lichen"
done
hand=$(median <"$work/by_hand")
lich=$(median <"$work/by_lichen")
echo "docker run by hand:        median $((hand / 1000)) ms  (runs: $(tr '\n' ' ' <"$work/by_hand")us)"
echo "lichen deployment create:  median $((lich / 1000)) ms  (runs: $(tr '\n' ' ' <"$work/by_lichen")us)"
echo "difference: $(((lich - hand) / 1000)) ms, ratio $(awk -v a="$lich" -v b="$hand" 'BEGIN {printf "%.2f", a / b}')"
shand=$(median <"$work/start_hand")
slich=$(median <"$work/start_lichen")
rlich=$(median <"$work/run_lichen")
echo "container started (dockerd's event time) after: by hand $((shand / 1000)) ms, lichen $((slich / 1000)) ms: difference $(((slich - shand) / 1000)) ms"
echo "  lichen split: deployment create -> Run step starting $((rlich / 1000)) ms (log stamps, 1 ms),"
echo "  then docker run through the component's socket -> container started $(((slich - rlich) / 1000)) ms (by hand: $((shand / 1000)) ms)"
echo "  the rest, container started -> line found in the component's log file: $(((lich - slich) / 1000)) ms (by hand, to the terminal: $(((hand - shand) / 1000)) ms; the log is flushed every 100 ms)"
remove=()
for i in $(seq "$runs"); do remove+=(--remove "com.example.Bench$i"); done
cli deployment create "${remove[@]}" --wait --timeout 120 >/dev/null

echo
echo "== 2. pull of a ${size_mb} MB image from 127.0.0.1:5000: Lichen (Engine API) against docker pull"
big=127.0.0.1:5000/lichen-bench/big
layer=$work/layer
mkdir -p "$layer"
head -c "$((size_mb * 1024 * 1024))" /dev/urandom >"$layer/blob"
tar -C "$layer" -c . | docker import - "$big:base" >/dev/null
rm -rf "$layer"
: >"$work/pull_docker"
: >"$work/pull_lichen"
: >"$work/pull_lichen_log"
# One tag in the registry, nothing of it on the daemon before each pull: every pull moves
# the whole layer.
tag="$big:$$"
docker tag "$big:base" "$tag"
docker push "$tag" >/dev/null
docker rmi "$tag" "$big:base" >/dev/null
# Milliseconds since the epoch of a greengrass.log line's timestamp.
log_ms() { date -d "$(cut -d' ' -f1 <<<"$1")" +%s%3N; }
for i in $(seq 3); do
  t0=$(now_us)
  docker pull -q "$tag" >/dev/null
  echo $(($(now_us) - t0)) >>"$work/pull_docker"
  docker rmi "$tag" >/dev/null

  name=com.example.Pull$i
  recipe "$name" 1.0.0 "ComponentDependencies:
  aws.greengrass.DockerApplicationManager:
    VersionRequirement: ~2.0.0
Manifests:
  - Lifecycle:
      Run: 'true'
    Artifacts:
      - URI: docker:$tag"
  t0=$(now_us)
  cli deployment create -r "$work/recipes" -m "$name=1.0.0" --wait --timeout 300 >/dev/null
  echo $(($(now_us) - t0)) >>"$work/pull_lichen"
  # The pull alone, from the daemon's log: "pulling (attempt 1" to "pulled".
  # (The log is flushed every 100 ms.)
  for _ in $(seq 100); do
    [ "$(grep -F ". pulled" "$root/logs/greengrass.log" | grep -cF "$tag")" -ge "$i" ] && break
    sleep 0.05
  done
  last=$(grep -F ". pulled" "$root/logs/greengrass.log" | grep -F "$tag" | tail -n 1)
  first=$(grep -F "pulling (attempt 1" "$root/logs/greengrass.log" | grep -F "$tag" | tail -n 1)
  echo $((($(log_ms "$last") - $(log_ms "$first")) * 1000)) >>"$work/pull_lichen_log"
  cli deployment create --remove "$name" --wait --timeout 120 >/dev/null
  # Removing the component removes its image (the last recipe naming it went).
  for _ in $(seq 200); do docker image inspect "$tag" >/dev/null 2>&1 || break; sleep 0.05; done
  docker rmi "$tag" >/dev/null 2>&1 || true
done
pd=$(median <"$work/pull_docker")
pl=$(median <"$work/pull_lichen")
echo "docker pull:                        median $((pd / 1000)) ms, $(awk -v s="$size_mb" -v t="$pd" 'BEGIN {printf "%.0f", s / (t / 1e6)}') MB/s  (runs: $(tr '\n' ' ' <"$work/pull_docker")us)"
pg=$(median <"$work/pull_lichen_log")
echo "lichen pull (from its log):         median $((pg / 1000)) ms, $(awk -v s="$size_mb" -v t="$pg" 'BEGIN {printf "%.0f", s / (t / 1e6)}') MB/s  (runs: $(tr '\n' ' ' <"$work/pull_lichen_log")us)"
echo "lichen deployment (pull + deploy):  median $((pl / 1000)) ms, $(awk -v s="$size_mb" -v t="$pl" 'BEGIN {printf "%.0f", s / (t / 1e6)}') MB/s  (runs: $(tr '\n' ' ' <"$work/pull_lichen")us)"

echo
echo "== 3. the daemon's memory with $containers container components"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$nucleus/status"; }
threads() { awk '/^Threads/ {print $2}' "/proc/$nucleus/status"; }
echo "before: VmRSS $(rss) kB, threads $(threads)"
args=()
for i in $(seq "$containers"); do
  name=com.example.Many$i
  # Detached, so that Lichen follows each container's output (the costlier case).
  recipe "$name" 1.0.0 "Manifests:
  - Lifecycle:
      Startup: docker run -d --name lichen-bench-many-$i $image sh -c 'echo up; exec sleep 3600'"
  args+=(-m "$name=1.0.0")
done
cli deployment create -r "$work/recipes" "${args[@]}" --wait --timeout 300 >/dev/null
running=$(docker ps -q --filter name=lichen-bench-many- | wc -l)
echo "with $running containers running: VmRSS $(rss) kB, threads $(threads)"
remove=()
for i in $(seq "$containers"); do remove+=(--remove "com.example.Many$i"); done
t0=$(now_us)
cli deployment create "${remove[@]}" --wait --timeout 300 >/dev/null
for _ in $(seq 600); do
  [ "$(docker ps -aq --filter name=lichen-bench-many- | wc -l)" -eq 0 ] && break
  sleep 0.05
done
echo "removed: $(docker ps -aq --filter name=lichen-bench-many- | wc -l) containers left, $((($(now_us) - t0) / 1000)) ms; VmRSS $(rss) kB, threads $(threads)"
