#!/usr/bin/env bash
# The main job: build ballast and run examples/basic end to end on a scratch copy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust (https://rustup.rs) and run this again" >&2
  exit 1
fi
cargo build --release --quiet
ballast="$root/target/release/ballast"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r examples/basic/. "$work/"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "ballast plan"
"$ballast" -chdir="$work" plan

step "ballast apply -auto-approve"
"$ballast" -chdir="$work" apply -auto-approve
cat "$work/out/inventory.txt"

step "ballast plan (nothing to do)"
"$ballast" -chdir="$work" plan -detailed-exitcode

step "someone edits out/inventory.txt by hand; ballast drift catches it"
echo "- rogue: added by hand" >> "$work/out/inventory.txt"
set +e
"$ballast" -chdir="$work" drift
code=$?
set -e
echo "(drift exit code: $code)"
[ "$code" -eq 2 ] || { echo "expected drift to exit 2" >&2; exit 1; }

step "ballast apply repairs it"
"$ballast" -chdir="$work" apply -auto-approve
"$ballast" -chdir="$work" drift

step "ballast destroy"
"$ballast" -chdir="$work" destroy -auto-approve
