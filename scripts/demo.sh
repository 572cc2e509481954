#!/usr/bin/env bash
# The main job: installs what is missing, builds Lichen, starts the nucleus on a fresh
# root, deploys the example components with the Greengrass CLI's commands (the hello
# components, then the AWS guide's four Docker examples against local stand-ins), shows
# them running, and stops the nucleus cleanly: no container is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh release
# dockerd, the registries and s3rver; at exit, stop only what this run started.
before=$(scripts/services.sh list)
scripts/services.sh start
started_services=$(comm -13 <(sort <<<"$before") <(scripts/services.sh list | sort) | tr '\n' ' ')
lichen="$PWD/build/src/cli/lichen"
# The Greengrass CLI's name works too: same binary, same syntax.
ln -sf lichen build/src/cli/greengrass-cli
greengrass_cli="$PWD/build/src/cli/greengrass-cli"

root="${LICHEN_DEMO_ROOT:-$PWD/build/demo-root}"
rm -rf "$root"
mkdir -p "$root"
log="$root.nucleus.out"
"$lichen" nucleus --root "$root" --config examples/docker/config.yaml >"$log" 2>&1 &
nucleus=$!
stop_nucleus() {
  if kill -0 "$nucleus" 2>/dev/null; then
    kill -TERM "$nucleus"
    wait "$nucleus" || true
  fi
}
stop_services() {
  # shellcheck disable=SC2086 # a list of names
  [ -z "$started_services" ] || scripts/services.sh stop $started_services
}
trap 'stop_nucleus; stop_services' EXIT
for _ in $(seq 100); do
  [ -S "$root/ipc.socket" ] && [ -f "$root/cli_ipc_info/lichen_cli" ] && break
  kill -0 "$nucleus" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.05
done
export LICHEN_ROOT="$root"

step() { echo; echo "== $*"; }

# The AWS guide's four Docker examples (examples/docker/recipes), unchanged but for the
# guide's placeholder bucket (DOC-EXAMPLE-BUCKET is not a valid bucket name for s3rver).
# Their images are built from busybox-static under the names the recipes use: no
# registry is reachable here, and a non-latest tag already present needs no network.
docker_demo() {
  local bucket=lichen-examples work images=tests/docker/make_test_image.sh
  work=$(mktemp -d)
  step "docker examples: images under the recipes' names, artifacts in s3rver"
  "$images" lichen-demo/busybox:1 >/dev/null
  # Compose's two services, and the IPC example's app: each says what it sees.
  docker tag lichen-demo/busybox:1 public.ecr.aws/nginx/nginx:latest
  docker tag lichen-demo/busybox:1 mysql:8.0
  docker rmi public.ecr.aws/my-namespace/my-ipc-app:1.0.0 >/dev/null 2>&1 || true
  "$images" public.ecr.aws/my-namespace/my-ipc-app:1.0.0 sh -c \
    'echo "in a container, IPC socket $AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT:"; ls -l "$AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"; echo "SVCUID is set: ${SVCUID:+yes}"' >/dev/null
  docker rmi 123456789012.dkr.ecr.us-west-2.amazonaws.com/my-private-app:1.0.0 >/dev/null 2>&1 || true
  "$images" 123456789012.dkr.ecr.us-west-2.amazonaws.com/my-private-app:1.0.0 \
    echo "hello from the private ECR example" >/dev/null
  docker rmi my-app-image >/dev/null 2>&1 || true
  "$images" my-app-image:latest echo "hello from an image loaded from S3" >/dev/null
  docker save -o "$work/my-app-image.tar" my-app-image:latest
  docker rmi my-app-image:latest >/dev/null
  cat >"$work/docker-compose.yaml" <<'COMPOSE'
version: '3'
services:
  web:
    image: public.ecr.aws/nginx/nginx:latest
    command: sh -c 'echo web is up; exec sleep 3600'
  db:
    image: mysql:8.0
    command: sh -c 'echo db is up; exec sleep 3600'
COMPOSE
  curl -sf -X PUT "http://127.0.0.1:4568/$bucket" >/dev/null || true
  curl -sf -X PUT --data-binary "@$work/docker-compose.yaml" \
    "http://127.0.0.1:4568/$bucket/folder/docker-compose.yaml" >/dev/null
  curl -sf -X PUT --data-binary "@$work/my-app-image.tar" \
    "http://127.0.0.1:4568/$bucket/folder/my-app-image.tar" >/dev/null
  mkdir -p "$work/recipes"
  for r in examples/docker/recipes/*.yaml; do
    sed "s/DOC-EXAMPLE-BUCKET/$bucket/g" "$r" >"$work/recipes/$(basename "$r")"
  done

  local names=(com.example.MyDockerComposeComponent com.example.MyPrivateDockerComponent
    com.example.MyS3DockerComponent com.example.MyDockerIpcComponent)
  local args=()
  for n in "${names[@]}"; do
    # Docker is root's: run them as root (or add ggc_user to the docker group, as the guide says).
    args+=(--merge "$n=1.0.0" --runWith "$n:posixUser=root")
  done
  step "greengrass-cli deployment create (the four Docker examples)"
  "$greengrass_cli" deployment create --recipeDir "$work/recipes" "${args[@]}" --wait --timeout 120

  step "greengrass-cli component list"
  "$greengrass_cli" component list
  sleep 2
  for n in "${names[@]}"; do
    step "$n: its log (the containers' output included)"
    grep -E 'stdout|stderr' "$root/logs/$n.log" | tail -n 4 || true
  done
  step "their containers, labelled with the component that started them"
  docker ps -a --filter label=lichen.root="$root" \
    --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}\t{{.Label "lichen.component"}}'

  step "greengrass-cli deployment create --remove com.example.MyDockerComposeComponent"
  "$greengrass_cli" deployment create --remove com.example.MyDockerComposeComponent \
    --wait --timeout 120
  echo "its containers now: $(docker ps -aq \
    --filter label=lichen.component=com.example.MyDockerComposeComponent | wc -l)"
  rm -rf "$work"
}

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

step "lichen recipe validate (every example recipe, the Docker ones included)"
"$lichen" recipe validate examples/hello/recipes examples/docker/recipes examples/docker/recipes-json

docker_demo

step "stopping the nucleus (SIGTERM: Shutdown steps run, every process group stops, every container goes)"
stop_nucleus
trap stop_services EXIT
tail -n 3 "$root/logs/com.example.Greeter.log"
echo "containers left by the examples: $(docker ps -aq --filter label=lichen.root="$root" | wc -l)"
echo
echo "demo: done (root: $root)"
