#!/usr/bin/env bash
# Builds the Kubernetes test binaries (etcd, kube-apiserver, kube-controller-manager, kubectl) for a
# pinned Kubernetes version from the Go module proxy, into a cache outside the repository keyed by
# version, and prints that directory on stdout (everything else goes to stderr).
#
# envtest convention: if KUBEBUILDER_ASSETS is set, it must hold the binaries; they are used as they
# are and nothing is built. A warm cache returns at once.
#
#   K8S_VERSION         Kubernetes version (default below)
#   ETCD_VERSION        etcd version (default: the go.etcd.io/etcd/server/v3 that Kubernetes requires)
#   BPFPROXY_K8S_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/bpfproxy/k8s)
#   GO                  the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
BINARIES=(etcd kube-apiserver kube-controller-manager kubectl)

log() { echo "k8s-test-binaries: $*" >&2; }
die() { log "error: $*"; exit 1; }

has_all() {
  local dir=$1 b
  for b in "${BINARIES[@]}"; do [ -x "$dir/$b" ] || return 1; done
}

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  # The user brought their own binaries: never build over them, and say what is missing.
  for b in "${BINARIES[@]}"; do
    [ -x "$KUBEBUILDER_ASSETS/$b" ] || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable '$b' (needs: ${BINARIES[*]}); unset it to build them"
  done
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

[[ $K8S_VERSION =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "K8S_VERSION must look like v1.36.3 (got '$K8S_VERSION')"
minor=${BASH_REMATCH[1]} patch=${BASH_REMATCH[2]}
staging_version="v0.$minor.$patch" # k8s.io/* staging modules are tagged v0.<minor>.<patch>

cache_root=${BPFPROXY_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bpfproxy/k8s}
out="$cache_root/$K8S_VERSION"
if has_all "$out" && [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[ -x "$GO" ] || die "no Go toolchain (looked for 'go' on PATH and /usr/local/go/bin/go; set GO=...)"
command -v node >/dev/null || die "node is needed to read go.mod JSON"
command -v flock >/dev/null || die "flock (util-linux) is needed"

mkdir -p "$out"
# Concurrent callers (parallel test workers, two CI jobs) wait for one build instead of racing.
exec 9>"$out/.lock"
if ! flock -n 9; then
  log "another build of $K8S_VERSION is running; waiting for it"
  flock 9
fi
if has_all "$out" && [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi

# Modules and build cache stay the user's (shared across versions); no toolchain downloads.
export GOTOOLCHAIN=local GOFLAGS="-p=2 -mod=mod" CGO_ENABLED=0 GOWORK=off
start=$(date +%s)
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "building Kubernetes $K8S_VERSION into $out (cold builds take a while on small machines)"
kube_json=$(cd "$work" && "$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION") ||
  die "cannot download k8s.io/kubernetes@$K8S_VERSION from $("$GO" env GOPROXY): $kube_json"
kube_gomod=$(node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8")); if(j.Error){console.error(j.Error);process.exit(1)} console.log(j.GoMod)' <<<"$kube_json") ||
  die "k8s.io/kubernetes@$K8S_VERSION: download failed"
gomod_json=$("$GO" mod edit -json "$kube_gomod")

need_go=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(0,"utf8")).Go)' <<<"$gomod_json")
have_go=$("$GO" env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -1)" != "$need_go" ]; then
  die "Kubernetes $K8S_VERSION needs Go >= $need_go, $GO is $have_go"
fi

if [ -z "${ETCD_VERSION:-}" ]; then
  ETCD_VERSION=$(node -e '
    const m = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const r = (m.Require || []).find((r) => r.Path === "go.etcd.io/etcd/server/v3" || r.Path === "go.etcd.io/etcd/client/v3");
    if (!r) process.exit(1);
    console.log(r.Version);' <<<"$gomod_json") || die "cannot find the etcd version in Kubernetes' go.mod; set ETCD_VERSION"
fi

# A throw-away module: requires k8s.io/kubernetes, and, because replace directives of dependencies
# are ignored, repeats Kubernetes' replaces of its staging modules (./staging/src/k8s.io/X) as the
# published k8s.io/X v0.<minor>.<patch>.
cd "$work"
"$GO" mod init bpfproxy.local/k8s-test-binaries >/dev/null 2>&1
"$GO" mod edit -go="$need_go" -require="k8s.io/kubernetes@$K8S_VERSION" -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
# shellcheck disable=SC2016 # the single quotes hold node's code, not the shell's
replaces=$(node -e '
  const m = JSON.parse(require("fs").readFileSync(0, "utf8"));
  for (const r of m.Replace || []) {
    if (r.New.Path.startsWith("./staging/src/")) console.log(`-replace=${r.Old.Path}=${r.Old.Path}@${process.argv[1]}`);
  }' "$staging_version" <<<"$gomod_json")
[ -n "$replaces" ] || die "no staging replace directives found in k8s.io/kubernetes@$K8S_VERSION go.mod"
# shellcheck disable=SC2086
"$GO" mod edit $replaces
cat >tools.go <<'EOF'
//go:build tools

// Records the commands to build, so that `go mod tidy` resolves everything they import.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
log "resolving modules (k8s.io/kubernetes $K8S_VERSION, staging $staging_version, etcd $ETCD_VERSION)"
"$GO" mod tidy >&2 || die "go mod tidy failed (is the module proxy reachable? see above)"

build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
version_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  version_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

# One binary at a time: a 2-core machine builds them faster and without running out of memory.
for b in "${BINARIES[@]}"; do
  case $b in
    etcd) pkg=go.etcd.io/etcd/server/v3 ;;
    *) pkg=k8s.io/kubernetes/cmd/$b ;;
  esac
  t0=$(date +%s)
  log "go build $pkg"
  "$GO" build -trimpath -ldflags "-s -w$version_ldflags" -o "$work/bin/$b" "$pkg" >&2 || die "building $b failed (see above)"
  log "  $b built in $(($(date +%s) - t0)) s"
done

for b in "${BINARIES[@]}"; do mv -f "$work/bin/$b" "$out/$b"; done
{
  echo "kubernetes=$K8S_VERSION"
  echo "etcd=$ETCD_VERSION"
  echo "go=$have_go"
  echo "built=$build_date"
  echo "seconds=$(($(date +%s) - start))"
} >"$out/.complete"
log "done in $(($(date +%s) - start)) s"
echo "$out"
