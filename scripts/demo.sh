#!/usr/bin/env bash
# The main job: installs what is missing, builds Lichen, starts the nucleus on a fresh
# root, deploys the example components with the Greengrass CLI's commands, shows them
# running, and stops the nucleus cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh release
lichen="$PWD/build/src/cli/lichen"
# The Greengrass CLI's name works too: same binary, same syntax.
ln -sf lichen build/src/cli/greengrass-cli
greengrass_cli="$PWD/build/src/cli/greengrass-cli"

root="${LICHEN_DEMO_ROOT:-$PWD/build/demo-root}"
rm -rf "$root"
mkdir -p "$root"
log="$root.nucleus.out"
"$lichen" nucleus --root "$root" --config examples/hello/config.yaml >"$log" 2>&1 &
nucleus=$!
stop_nucleus() {
  if kill -0 "$nucleus" 2>/dev/null; then
    kill -TERM "$nucleus"
    wait "$nucleus" || true
  fi
}
trap stop_nucleus EXIT
for _ in $(seq 100); do
  [ -S "$root/ipc.socket" ] && [ -f "$root/cli_ipc_info/lichen_cli" ] && break
  kill -0 "$nucleus" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.05
done
export LICHEN_ROOT="$root"

step() { echo; echo "== $*"; }

step "greengrass-cli deployment create (two components; Greeter depends on HelloWorld)"
"$greengrass_cli" deployment create \
  --recipeDir examples/hello/recipes --artifactDir examples/hello/artifacts \
  --merge com.example.Greeter=1.0.0 --wait --timeout 60

step "greengrass-cli component list"
"$greengrass_cli" component list

step "greengrass-cli deployment create --update-config (MERGE a new message)"
"$greengrass_cli" deployment create \
  --update-config '{"com.example.HelloWorld":{"MERGE":{"Message":"Lichen","IntervalSeconds":1}}}' \
  --wait --timeout 60
sleep 1.5
step "greengrass-cli logs get (HelloWorld's latest lines)"
"$greengrass_cli" logs get --log-file "$root/logs/com.example.HelloWorld.log" | tail -n 3

step "greengrass-cli deployment list"
"$greengrass_cli" deployment list

step "lichen recipe validate examples/ (the Docker examples included)"
"$lichen" recipe validate examples/

step "stopping the nucleus (SIGTERM: Shutdown steps run, then every process group stops)"
stop_nucleus
trap - EXIT
tail -n 3 "$root/logs/com.example.Greeter.log"
echo
echo "demo: done (root: $root)"
