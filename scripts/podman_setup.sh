#!/usr/bin/env bash
# Makes this Debian 12 machine able to build and run the project's container images with podman,
# idempotently (root). Used by scripts/container_test.sh; safe to run by hand.
#   - installs podman, runc, mmdebstrap (and xmllint for the Unraid template check) if missing;
#   - writes /etc/containers/containers.conf when it does not exist yet: runc as the runtime
#     (crun fails on this machine's hybrid cgroups) and default ulimits the host can grant (podman
#     otherwise asks for open-file/process limits that root cannot raise here);
#   - makes the `debian:12` base image from the Debian mirror with mmdebstrap (no registry is
#     reachable here) and tags it docker.io/library/debian:12, so `FROM debian:12` finds it.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/apt_need.sh
apt_need podman_setup podman runc mmdebstrap libxml2-utils uidmap

conf=/etc/containers/containers.conf
if [ ! -f "$conf" ]; then
  mkdir -p /etc/containers
  nofile=$(ulimit -Hn)
  cat >"$conf" <<EOF
# Written by shardquant's scripts/podman_setup.sh.
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=32768:32768"]

[engine]
runtime = "runc"
EOF
  echo "podman_setup: wrote $conf (runc, nofile=$nofile, nproc=32768)"
fi

if ! podman image exists docker.io/library/debian:12; then
  # The same mirror and suite the host's apt uses.
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  tar=$(mktemp --suffix=.tar)
  echo "podman_setup: mmdebstrap --variant=minbase bookworm from $mirror"
  mmdebstrap --quiet --variant=minbase bookworm "$tar" "$mirror" \
    "deb ${mirror%/debian}/debian-security bookworm-security main"
  podman import --quiet "$tar" docker.io/library/debian:12 >/dev/null
  rm -f "$tar"
  echo "podman_setup: base image docker.io/library/debian:12 ready ($(podman image inspect --format '{{.Size}}' docker.io/library/debian:12) bytes)"
fi
