#!/usr/bin/env bash
# Builds the previous release of bpfproxy (a commit of this repository, hack/previous-release.txt)
# into a cache outside the clone, and prints that directory on stdout (everything else goes to
# stderr). The upgrade test (test/lab-agent/upgrade.test.ts) runs its agent from there: the release
# users are running today, replaced by this checkout's agent under traffic, and back.
#
# A warm cache returns at once; a cold one takes a `npm ci` (libbpf, BPF objects, the addon).
#
#   BPFPROXY_RELEASE_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/bpfproxy/releases)
set -euo pipefail

cd "$(dirname "$0")/.."
log() { echo "previous-release: $*" >&2; }
die() { log "error: $*"; exit 1; }

commit=$(grep -v '^#' hack/previous-release.txt | head -1 | tr -d '[:space:]')
[[ $commit =~ ^[0-9a-f]{40}$ ]] || die "hack/previous-release.txt must name a full commit id (got '$commit')"

cache_root=${BPFPROXY_RELEASE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bpfproxy/releases}
out="$cache_root/$commit"
if [ -f "$out/.built" ]; then
  echo "$out"
  exit 0
fi

if ! git cat-file -e "$commit^{commit}" 2>/dev/null; then
  # A shallow or single-branch clone: fetch just that commit.
  log "fetching $commit"
  git fetch -q --depth 1 origin "$commit" || die "commit $commit is not in this clone and could not be fetched from origin"
fi

mkdir -p "$cache_root"
tmp=$(mktemp -d "$cache_root/.build-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "building $commit into $out"
git archive "$commit" | tar -x -C "$tmp"
(cd "$tmp" && npm ci --no-audit --no-fund >&2) || die "npm ci of $commit failed"
touch "$tmp/.built"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out"
