#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a fixed time each. `go test
# -fuzz` takes one target in one package at a time, so list them first.
set -euo pipefail
fuzztime=${1:-15s}
found=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    found=$((found + 1))
    echo "fuzz: $pkg $target for $fuzztime"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
  done
done
if [ "$found" -eq 0 ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
echo "fuzz: $found targets ran for $fuzztime each"
