#!/usr/bin/env bash
# The main job: installs what is missing, builds Lichen, and shows it at work on the
# example recipes in examples/.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh release
lichen=build/src/cli/lichen

echo
echo "== lichen recipe validate examples/"
"$lichen" recipe validate examples/
for r in examples/docker/recipes/*.yaml; do
  echo
  echo "== lichen recipe show $r"
  "$lichen" recipe show "$r" --platform os=linux,architecture=amd64
done

echo
echo "== lichen recipe resolve (the versions a deployment of the four examples would run)"
"$lichen" recipe resolve --recipeDir examples/docker/recipes \
  --merge com.example.MyDockerComposeComponent=1.0.0,com.example.MyPrivateDockerComponent=1.0.0 \
  --merge com.example.MyS3DockerComponent=1.0.0,com.example.MyDockerIpcComponent=1.0.0
