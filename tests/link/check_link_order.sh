#!/usr/bin/env bash
# Each executable named must list libstdc++.so.6 as its first DT_NEEDED entry, so that the
# dynamic linker binds std:: symbols to it and not to the copies pip LibTorch exports.
# Exit 0 when all do, 1 (with the NEEDED list) when one does not, 77 (skipped) without readelf.
command -v readelf >/dev/null || { echo "SKIPPED: no readelf"; exit 77; }
rc=0
for exe in "$@"; do
  first=$(readelf -d "$exe" | awk '/\(NEEDED\)/{print $NF; exit}')
  if [ "$first" = "[libstdc++.so.6]" ]; then
    echo "ok: $exe loads libstdc++.so.6 first"
  else
    echo "FAIL: $exe: first NEEDED is ${first:-none}, expected [libstdc++.so.6]; all:"
    readelf -d "$exe" | grep NEEDED
    rc=1
  fi
done
exit $rc
