#!/usr/bin/env bash
# The drift check of .github/workflows/drift.yml, runnable by hand as well:
#   bash drift-check.sh [REPORT_DIR]   (in the configuration's directory)
# Runs `ballast drift` with the three reports into REPORT_DIR (default: reports) and maps
# ballast's exit code: 0 (clean) and 2 (drift, conflicts, orphans, failed checks) are
# results, recorded as drift=false/true in $GITHUB_OUTPUT when it is set; anything else
# (1: an error, such as a bad configuration or an unwritable report) fails the script.
set -uo pipefail
reports=${1:-reports}
ballast=${BALLAST:-ballast}
mkdir -p "$reports"
# No stale report from an earlier run may be taken for this one's.
rm -f "$reports/drift.md" "$reports/drift.xml" "$reports/drift.json"
"$ballast" drift -no-color \
  -report-markdown="$reports/drift.md" \
  -report-junit="$reports/drift.xml" \
  -report-json="$reports/drift.json"
code=$?
case $code in
  0) drift=false ;;
  2) drift=true ;;
  *)
    echo "ballast drift failed with exit code $code: this is an error, not drift" >&2
    exit "$code"
    ;;
esac
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  echo "drift=$drift" >>"$GITHUB_OUTPUT"
fi
echo "drift=$drift"
