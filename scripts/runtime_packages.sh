#!/usr/bin/env bash
# The Debian/Ubuntu packages that own the shared libraries a binary loads (ldd, resolved through
# symlinks such as the libblas.so.3 alternative), one per line, sorted. Libraries under the
# directories given with --skip (e.g. a LibTorch copied into the image) are left out.
#   scripts/runtime_packages.sh BINARY [--skip DIR]...
# The container images install exactly this list in their runtime stage, and
# tests/docker check it against ldd again inside the finished image.
set -euo pipefail
bin=${1:?usage: runtime_packages.sh BINARY [--skip DIR]...}
shift
skips=()
while (($#)); do
  [ "$1" = --skip ] || { echo "runtime_packages.sh: unknown argument '$1'" >&2; exit 2; }
  skips+=("$(realpath -m "$2")"); shift 2
done
missing=$(ldd "$bin" | awk '/not found/{print $1}')
[ -z "$missing" ] || { echo "runtime_packages.sh: $bin needs libraries that are not found: $missing" >&2; exit 3; }
# Real paths, then both spellings dpkg may know a library by on merged /usr (/usr/lib and /lib):
# one dpkg -S call for all of them (one call per library takes minutes for LibTorch's closure).
mapfile -t libs < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | xargs -r realpath | sort -u)
keep=()
for real in "${libs[@]}"; do
  for s in "${skips[@]}"; do [[ "$real" == "$s"/* ]] && continue 2; done
  keep+=("$real")
done
((${#keep[@]})) || exit 0
cands=()
for real in "${keep[@]}"; do cands+=("$real" "${real/#\/usr\/lib\//\/lib\/}"); done
owners=$(dpkg -S "${cands[@]}" 2>/dev/null || true)
for real in "${keep[@]}"; do
  alt=${real/#\/usr\/lib\//\/lib\/}
  pkg=$(awk -v a="$real" -v b="$alt" -F': ' '$2 == a || $2 == b {print $1; exit}' <<<"$owners")
  [ -n "$pkg" ] || { echo "runtime_packages.sh: no package owns $real (needed by $bin)" >&2; exit 3; }
  echo "${pkg%%:*}"
done | sort -u
