#!/usr/bin/env bash
# The full traffic matrix (test/lab-traffic): every lab shape (routed, VXLAN overlay, a node with two
# uplinks) × agent configuration × XDP mode × source ×
# frontend on agent-run labs, 16 MiB both ways and UDP in each cell. CI runs a pairwise subset;
# this runs the whole product and writes its table (default: bench/results/traffic-matrix.txt).
# As root, like the lab. Exits non-zero when a cell does not do what test/lab-traffic/_matrix.ts declares.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/traffic-matrix.txt}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
status=0
BPFPROXY_MATRIX=full BPFPROXY_MATRIX_OUT="$tmp" npx ava test/lab-traffic/matrix.test.ts || status=$?
{
  echo "# bpfproxy traffic matrix ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD), kernel $(uname -r), $(nproc) cores)"
  echo "# hack/traffic-matrix.sh: BPFPROXY_MATRIX=full npx ava test/lab-traffic/matrix.test.ts"
  cat "$tmp"
} > "$out"
echo "traffic matrix written to $out"
exit "$status"
