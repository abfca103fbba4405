#!/usr/bin/env bash
# Records the runPacketFlowTests cases of Kubernetes' kube-proxy unit tests
# (k8s.io/kubernetes/pkg/proxy/{iptables,nftables}) into test/oracle/packet-flow-cases.json, the
# upstream oracle that test/oracle/packet-flow.test.ts runs bpfproxy against.
#
# Upstream's own tests run on a copy of the two packages, changed only by renames and one added
# file (hack/packet-flow-recorder/recorder_test.go.in): runPacketFlowTests is wrapped so that each
# call also writes the Services and EndpointSlices the proxier holds, its settings and the expected
# verdicts; the proxier's On* and syncProxyRules methods are wrapped to capture the objects.
# Upstream's assertions still run, so every recorded expectation is one its rules produce.
#
#   K8S_VERSION  Kubernetes version (default: the one hack/k8s-test-binaries.sh pins)
#   GO           the go command (default: go on PATH, else /usr/local/go/bin/go)
#   RECORDS_OUT  if set, a directory that also gets the raw records (one JSON line per call)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck disable=SC2016 # a sed pattern: the $ and braces are literal
K8S_VERSION=${K8S_VERSION:-$(sed -n 's/^K8S_VERSION=\${K8S_VERSION:-\(v[0-9.]*\)}$/\1/p' "$here/k8s-test-binaries.sh")}
[[ $K8S_VERSION =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { echo "bad K8S_VERSION '$K8S_VERSION'" >&2; exit 1; }
staging_version="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
export GOTOOLCHAIN=local GOFLAGS="-p=2 -mod=mod" CGO_ENABLED=0 GOWORK=off
log() { echo "record-packet-flow-cases: $*" >&2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# A throw-away module requiring k8s.io/kubernetes; its staging replaces are repeated as the
# published k8s.io/X v0.<minor>.<patch> (replace directives of dependencies are ignored).
"$GO" mod init bpfproxy.local/packet-flow-oracle >/dev/null 2>&1
"$GO" mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
kube_gomod=$("$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" | node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8")); if (j.Error) { console.error(j.Error); process.exit(1) } console.log(j.GoMod)')
# shellcheck disable=SC2046,SC2016 # words on purpose; JavaScript in single quotes, for node
"$GO" mod edit $("$GO" mod edit -json "$kube_gomod" | node -e '
  const m = JSON.parse(require("fs").readFileSync(0, "utf8"));
  console.log(`-go=${m.Go}`);
  for (const r of m.Replace || []) if (r.New.Path.startsWith("./staging/src/")) console.log(`-replace=${r.Old.Path}=${r.Old.Path}@${process.argv[1]}`);
' "$staging_version")
src=$("$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0, "utf8")).Dir)')/pkg/proxy

# rename FILE OLD NEW: OLD must occur exactly once, as a method or function definition.
rename() {
  local file=$1 old=$2 new=$3 n
  n=$(grep -c -- "$old" "$file" || true)
  [ "$n" = 1 ] || { log "expected one '$old' in $file, found $n (upstream changed?)"; exit 1; }
  sed -i "s/$old/$new/" "$file"
}

# Each package is copied into the throw-away module (the module cache cannot be overlaid) and
# changed only by renames plus one added file.
for pkg in iptables nftables; do
  case $pkg in
    iptables)
      helpers=proxier_test.go line_type=int
      rules_type='*iptablestest.FakeIPTables' rules_import='iptablestest "k8s.io/kubernetes/pkg/util/iptables/testing"' ;;
    nftables)
      helpers=helpers_test.go line_type=string
      rules_type='*knftables.Fake' rules_import='"sigs.k8s.io/knftables"' ;;
  esac
  mkdir -p "$work/$pkg"
  cp "$src/$pkg"/*.go "$work/$pkg/"
  chmod u+w "$work/$pkg"/*
  for m in OnServiceUpdate OnEndpointSliceAdd OnEndpointSliceUpdate OnEndpointSliceDelete syncProxyRules; do
    rename "$work/$pkg/proxier.go" "^func (proxier \*Proxier) $m(" "func (proxier *Proxier) upstream${m^}("
  done
  rename "$work/$pkg/$helpers" "^func runPacketFlowTests(" "func upstreamRunPacketFlowTests("
  sed -e "s|@PKG@|$pkg|g" -e "s|@LINE_TYPE@|$line_type|" -e "s|@RULES_TYPE@|$rules_type|" -e "s|@RULES_IMPORT@|$rules_import|" \
    "$here/packet-flow-recorder/recorder_test.go.in" >"$work/$pkg/zz_oracle_recorder_test.go"
done
log "resolving modules (k8s.io/kubernetes $K8S_VERSION)"
"$GO" mod tidy >&2

export ORACLE_OUT="$work/records"
mkdir -p "$ORACLE_OUT"
log "running upstream's tests (a cold build takes a while)"
# Only the tests that call runPacketFlowTests; TestTracePacket checks the tracer on static rules.
nice -n 19 "$GO" test -count=1 \
  -run '^Test(NoEndpointsReject|ClusterIPGeneral|LoadBalancer|NodePorts|HealthCheckNodePort|ExternalTrafficPolicyLocal|ExternalTrafficPolicyCluster|InternalTrafficPolicy|TerminatingEndpointsTrafficPolicyLocal|TerminatingEndpointsTrafficPolicyCluster|InternalExternalMasquerade)$' \
  ./iptables ./nftables >&2

[ -z "${RECORDS_OUT:-}" ] || cp "$ORACLE_OUT"/*.jsonl "$RECORDS_OUT"/
go_version=$("$GO" env GOVERSION)
node "$here/packet-flow-recorder/merge.mjs" "$ORACLE_OUT/iptables.jsonl" "$ORACLE_OUT/nftables.jsonl" "$K8S_VERSION" "$go_version" >"$work/cases.json"
mv "$work/cases.json" "$repo/test/oracle/packet-flow-cases.json"
log "wrote test/oracle/packet-flow-cases.json"
