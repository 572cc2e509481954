#!/usr/bin/env bash
# The local servers the tests talk to. Idempotent:
#   scripts/services.sh start        start whatever does not answer yet
#   scripts/services.sh stop [NAME]  stop what this script started (all, or the NAMEs)
#   scripts/services.sh list         names of the services this script started that still run
#
# Services and their fixed addresses (tests hard-code these):
#   dockerd        unix:///var/run/docker.sock (the default socket, so `docker` in recipes
#                  works unchanged); data in /var/lib/lichen-docker
#   registry       http://127.0.0.1:5000  docker-registry (distribution 2.8), no auth
#   registry-auth  http://127.0.0.1:5001  docker-registry with htpasswd auth,
#                  user "lichen", password "lichen-secret"
#   s3rver         http://127.0.0.1:4568  S3-compatible server, data in /var/lib/lichen-s3rver
# With registry-auth, /etc/hosts maps the private-ECR-style name
# 123456789012.dkr.ecr.us-west-2.amazonaws.com to 127.0.0.1 (a line marked
# "lichen-services", removed by `stop`), so that registry answers under an ECR name; dockerd
# speaks plain HTTP to registries on 127.0.0.0/8.
# State (pidfiles, logs, configs): /run/lichen-services (LICHEN_SERVICES_DIR overrides).
#
# A service that already answers is left alone and is never stopped by `stop`: only the
# processes whose pidfiles this script wrote are.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${LICHEN_SERVICES_DIR:-/run/lichen-services}
DOCKER_SOCK=/var/run/docker.sock
DOCKER_ROOT=/var/lib/lichen-docker
REGISTRY_PORT=5000
REGISTRY_AUTH_PORT=5001
REGISTRY_USER=lichen
REGISTRY_PASSWORD=lichen-secret
S3_PORT=4568
S3_DIR=/var/lib/lichen-s3rver
S3RVER=$PWD/tools/s3rver/node_modules/.bin/s3rver
ALL=(dockerd registry registry-auth s3rver)
ECR_STYLE_HOST=123456789012.dkr.ecr.us-west-2.amazonaws.com
HOSTS_MARK="# lichen-services"

log() { echo "services: $*" >&2; }

# --- probes: does the service answer? ------------------------------------------------
answers() {
  case $1 in
    dockerd) [ "$(curl -s -m 2 --unix-socket "$DOCKER_SOCK" http://docker/_ping 2>/dev/null)" = OK ] ;;
    registry) [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$REGISTRY_PORT/v2/")" = 200 ] ;;
    # 401 without credentials: it is the protected instance, and it is up.
    registry-auth) [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$REGISTRY_AUTH_PORT/v2/")" = 401 ] ;;
    s3rver) curl -s -m 2 -o /dev/null "http://127.0.0.1:$S3_PORT/" ;;
  esac
}

# The pid in NAME's pidfile when that process still runs the program we started.
our_pid() {
  local name=$1 pid
  [ -f "$STATE/$name.pid" ] || return 1
  pid=$(cat "$STATE/$name.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # A recycled pid must not be mistaken for ours: compare the program it runs.
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$(cat "$STATE/$name.cmd" 2>/dev/null || echo '^$')" || return 1
  echo "$pid"
}

# wait_until SECONDS CMD...: polls CMD every 0.2 s; false when time runs out.
wait_until() {
  local tries=$(($1 * 5))
  shift
  for ((i = 0; i < tries; i++)); do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}

# spawn NAME MARKER CMD...: starts CMD detached in its own session, records its pid and a
# marker from its command line that identifies it in /proc later.
spawn() {
  local name=$1 marker=$2
  shift 2
  echo "$marker" >"$STATE/$name.cmd"
  setsid "$@" >>"$STATE/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
}

gone() { ! kill -0 "$1" 2>/dev/null; }

# --- starting -----------------------------------------------------------------------
start_dockerd() {
  local driver
  # overlay2 is what Docker picks where it works; vfs (slow, but needs nothing from the
  # kernel) is the fallback for sandboxes whose filesystem refuses overlay mounts.
  for driver in "" vfs; do
    spawn dockerd "dockerd --data-root $DOCKER_ROOT" \
      dockerd --data-root "$DOCKER_ROOT" --exec-root "$STATE/docker-exec" \
      --pidfile "$STATE/dockerd.daemon.pid" -H "unix://$DOCKER_SOCK" \
      ${driver:+--storage-driver "$driver"}
    local pid
    pid=$(cat "$STATE/dockerd.pid")
    if wait_until 60 bash -c "[ \"\$(curl -s -m 2 --unix-socket $DOCKER_SOCK http://docker/_ping)\" = OK ] || ! kill -0 $pid" &&
      answers dockerd; then
      log "dockerd up (storage driver: ${driver:-default}), log $STATE/dockerd.log"
      return 0
    fi
    log "dockerd did not answer with storage driver ${driver:-default}; see $STATE/dockerd.log"
    stop_one dockerd
  done
  return 1
}

write_registry_config() {  # NAME PORT AUTH(0|1)
  local name=$1 port=$2 auth=$3 dir=/var/lib/lichen-$1
  mkdir -p "$dir"
  {
    echo "version: 0.1"
    echo "log: {level: warn}"
    echo "storage:"
    echo "  filesystem: {rootdirectory: $dir}"
    echo "  delete: {enabled: true}"
    echo "http: {addr: 127.0.0.1:$port}"
    if [ "$auth" = 1 ]; then
      echo "auth:"
      echo "  htpasswd: {realm: lichen-test, path: $STATE/registry.htpasswd}"
    fi
  } >"$STATE/$name.yml"
}

start_registry() {  # NAME PORT AUTH
  local name=$1 port=$2 auth=$3
  if [ "$auth" = 1 ] && [ ! -s "$STATE/registry.htpasswd" ]; then
    # bcrypt is the only hash distribution accepts.
    htpasswd -Bbn "$REGISTRY_USER" "$REGISTRY_PASSWORD" >"$STATE/registry.htpasswd"
  fi
  write_registry_config "$name" "$port" "$auth"
  spawn "$name" "$STATE/$name.yml" docker-registry serve "$STATE/$name.yml"
  wait_until 20 answers "$name" || { log "$name did not answer; see $STATE/$name.log"; return 1; }
  log "$name up on 127.0.0.1:$port"
}

start_s3rver() {
  [ -x "$S3RVER" ] || { log "missing $S3RVER: run scripts/setup.sh"; return 1; }
  mkdir -p "$S3_DIR"
  spawn s3rver "s3rver" "$S3RVER" -d "$S3_DIR" -a 127.0.0.1 -p "$S3_PORT" --silent
  wait_until 20 answers s3rver || { log "s3rver did not answer; see $STATE/s3rver.log"; return 1; }
  log "s3rver up on 127.0.0.1:$S3_PORT"
}

start_one() {
  local name=$1
  if answers "$name"; then
    return 0
  fi
  # A pidfile whose process is gone (or was never ours) is stale.
  our_pid "$name" >/dev/null || rm -f "$STATE/$name.pid" "$STATE/$name.cmd"
  case $name in
    dockerd) start_dockerd ;;
    registry) start_registry registry "$REGISTRY_PORT" 0 ;;
    registry-auth) start_registry registry-auth "$REGISTRY_AUTH_PORT" 1 ;;
    s3rver) start_s3rver ;;
  esac
}

# Rewritten in place, not renamed: /etc/hosts is often a bind mount.
add_hosts_entry() {
  grep -q "$HOSTS_MARK" /etc/hosts 2>/dev/null && return 0
  echo "127.0.0.1 $ECR_STYLE_HOST $HOSTS_MARK" >>/etc/hosts
}
remove_hosts_entry() {
  grep -q "$HOSTS_MARK" /etc/hosts 2>/dev/null || return 0
  local kept
  kept=$(grep -v "$HOSTS_MARK" /etc/hosts)
  printf '%s\n' "$kept" >/etc/hosts
}

# --- stopping -----------------------------------------------------------------------
stop_one() {
  local name=$1 pid
  if pid=$(our_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    # dockerd stops its containers and its containerd first: give it time.
    if ! wait_until 30 gone "$pid"; then
      log "$name (pid $pid) ignored SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      wait_until 5 gone "$pid" || true
    fi
    log "$name stopped"
  fi
  rm -f "$STATE/$name.pid" "$STATE/$name.cmd"
}

mkdir -p "$STATE"
cmd=${1:-}
shift || true
case $cmd in
  start)
    rc=0
    for name in "${ALL[@]}"; do start_one "$name" || rc=1; done
    add_hosts_entry || { log "cannot add the $ECR_STYLE_HOST entry to /etc/hosts"; rc=1; }
    exit $rc
    ;;
  stop)
    names=("$@")
    [ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")
    # Reverse order: nothing depends on dockerd going last, but it is the slowest.
    for ((j = ${#names[@]} - 1; j >= 0; j--)); do
      stop_one "${names[j]}"
      [ "${names[j]}" != registry-auth ] || remove_hosts_entry
    done
    ;;
  list)
    for name in "${ALL[@]}"; do our_pid "$name" >/dev/null && echo "$name"; done
    true
    ;;
  *)
    echo "usage: $0 start | stop [NAME...] | list" >&2
    exit 2
    ;;
esac
