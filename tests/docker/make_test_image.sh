#!/usr/bin/env bash
# make_test_image.sh NAME[:TAG] [CMD...]
# Builds a tiny image from Debian's busybox-static (no registry is reachable here):
# a root folder with /bin/busybox and one symlink per applet, `tar | docker import`,
# with CMD (default: /bin/sh). Does nothing when NAME already exists. Prints NAME.
set -euo pipefail

name=${1:?usage: make_test_image.sh NAME[:TAG] [CMD...]}
shift
[[ $name == *:* ]] || name=$name:latest
if docker image inspect "$name" >/dev/null 2>&1; then
  echo "$name"
  exit 0
fi
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  [ -x /bin/busybox ] && busybox=/bin/busybox
fi
[ -n "$busybox" ] || { echo "make_test_image.sh: busybox missing (apt-get install busybox-static)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
# --list-full gives each applet's conventional folder (bin/sh, usr/bin/env, ...).
"$root/bin/busybox" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$root/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"

# CMD as a JSON array: each argument quoted, backslashes and quotes escaped.
[ $# -gt 0 ] || set -- /bin/sh
cmd=""
for a in "$@"; do
  a=${a//\\/\\\\}
  a=${a//\"/\\\"}
  cmd+="${cmd:+,}\"$a\""
done
tar -C "$root" -c . | docker import --change "CMD [$cmd]" - "$name" >/dev/null
echo "$name"
