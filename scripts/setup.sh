#!/usr/bin/env bash
# Installs what building and testing Lichen needs on Debian 12, and nothing that is
# already there. Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake ninja-build g++ pkg-config git
  clang-14 libclang-rt-14-dev            # libFuzzer targets
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libssl-dev libsqlite3-dev zlib1g-dev libcurl4-openssl-dev libarchive-dev libboost-dev
  python3 procps                         # test fixtures (zip files), ps/pgrep
  docker.io containerd runc docker-compose # Docker Engine 20.10 (scripts/services.sh)
  docker-registry apache2-utils curl      # local registries, htpasswd; service probes
  busybox-static                          # test images (tests/docker/make_test_image.sh)
  iproute2                                # bridges of the tests' private dockerd
)
# Node.js runs the reference oracles and SDK clients; keep an existing install.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages pinned by lockfiles; reinstalled only when a lockfile changes.
for dir in tools/*/; do
  [ -f "$dir/package-lock.json" ] || continue
  stamp="$dir/node_modules/.lichen-lock"
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    echo "setup: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
done

# The user components run as by default, as the Greengrass installer creates it with
# --component-default-user ggc_user:ggc_group.
getent group ggc_group >/dev/null || groupadd --system ggc_group
getent passwd ggc_user >/dev/null ||
  useradd --system --gid ggc_group --no-create-home --shell /usr/sbin/nologin ggc_user
