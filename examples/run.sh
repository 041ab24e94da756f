#!/usr/bin/env bash
# The main job: build ballast and run examples/quickstart on the local libvirt (QEMU, TCG).
# Installs and starts libvirtd when it is missing and this runs as root; otherwise it says
# exactly what to install. Everything it creates is destroyed at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install the Rust toolchain (rustup) and run this again" >&2
  exit 1
fi
if [ ! -S /run/libvirt/libvirt-sock ] || ! pkg-config --exists libvirt 2>/dev/null; then
  bash .ci/libvirt-up
fi
cargo build --release --quiet
ballast="$root/target/release/ballast"

work=$(mktemp -d)
prefix="ballast-qs-$$"
vars=(-var "prefix=$prefix" -var "pool_path=/var/lib/libvirt/images/$prefix")
cp -r examples/quickstart/. "$work/"
cleanup() {
  "$ballast" -chdir="$work" destroy -auto-approve "${vars[@]}" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "ballast plan"
"$ballast" -chdir="$work" plan "${vars[@]}"

step "ballast apply -auto-approve"
"$ballast" -chdir="$work" apply -auto-approve "${vars[@]}"
virsh -c qemu:///system list --all | grep "$prefix"

step "ballast plan (nothing to do)"
"$ballast" -chdir="$work" plan -detailed-exitcode "${vars[@]}"

step "someone stops a VM behind ballast's back (virsh destroy); ballast drift catches it"
virsh -c qemu:///system destroy "$prefix-vm-1" >/dev/null
set +e
"$ballast" -chdir="$work" drift "${vars[@]}"
code=$?
set -e
echo "(drift exit code: $code)"
[ "$code" -eq 2 ] || { echo "expected drift to exit 2" >&2; exit 1; }

step "ballast apply starts it again"
"$ballast" -chdir="$work" apply -auto-approve "${vars[@]}"
"$ballast" -chdir="$work" drift "${vars[@]}"
virsh -c qemu:///system list --all | grep "$prefix"

step "ballast destroy"
"$ballast" -chdir="$work" destroy -auto-approve "${vars[@]}"
left=$(virsh -c qemu:///system list --all --name | grep -c "$prefix" || true)
echo "domains left with prefix $prefix: $left"
