#!/usr/bin/env bash
# The team example in one command: a local PostgreSQL (started with .ci/postgres-up when
# BALLAST_PG_TEST_URL is not set; that needs root), two laptops (two copies of this
# directory) sharing one state, a workspace, the state lock between them, and encryption.
# BALLAST names the binary (default: a release build of this repository).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -z "${BALLAST:-}" ]; then
  (cd "$root" && cargo build --release --quiet)
  BALLAST="$root/target/release/ballast"
fi
url=${BALLAST_PG_TEST_URL:-$(bash "$root/.ci/postgres-up")}
# libpq's variables, from the URL postgresql://USER:PASSWORD@HOST:PORT/DB
rest=${url#*://}; creds=${rest%%@*}; hostpart=${rest#*@}
export PGUSER=${creds%%:*} PGPASSWORD=${creds#*:}
export PGHOST=${hostpart%%:*}; hostpart=${hostpart#*:}
export PGPORT=${hostpart%%/*} PGDATABASE=${hostpart#*/}
export PGSSLMODE=${PGSSLMODE:-prefer}
schema="team_example_$$"

work=$(mktemp -d)
trap 'psql -q -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
for who in alice bob; do
  mkdir -p "$work/$who"
  sed "s/team_example/$schema/" "$here/main.hcl" >"$work/$who/main.hcl"
done
alice() { (cd "$work/alice" && "$BALLAST" "$@"); }
bob() { (cd "$work/bob" && "$BALLAST" "$@"); }
step() { printf '\n== %s\n' "$*"; }

step "alice: ballast apply"
alice apply -auto-approve
step "bob sees the same state: nothing to do"
bob plan -detailed-exitcode
step "bob: a staging workspace of his own"
bob workspace new staging
bob apply -auto-approve -var release=2026.12
bob workspace list
step "alice still has hers"
alice output release
step "alice and bob apply at once: one waits for the other's lock, then finds nothing to do"
bob workspace select default
alice apply -auto-approve -lock-timeout=30s -var release=2026.11.1 &
bob apply -auto-approve -lock-timeout=30s -var release=2026.11.1
wait
step "encrypt the shared state: the database holds no value in clear"
export BALLAST_STATE_PASSPHRASE="the team's passphrase, from its secret store"
alice state encrypt
psql -Atc "SELECT attributes FROM $schema.resources WHERE workspace = 'default'"
bob plan -detailed-exitcode -var release=2026.11.1
step "done"
