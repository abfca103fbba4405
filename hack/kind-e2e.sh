#!/usr/bin/env bash
# bpfproxy end to end on kind: a cluster without kube-proxy (deploy/kind/cluster.yaml), the image
# built and loaded onto its nodes, bpfproxy deployed from deploy/overlays/kind with the real address
# of the control-plane node, the project's e2e specs (test/e2e, the same specs `lab up --api kube`
# runs) against it, optionally upstream Kubernetes' `[sig-network] Services` e2e tests, and the
# cluster deleted at the end, pass or fail.
#
#   hack/kind-e2e.sh [--upstream] [--keep] [--no-build] [--name NAME]
#
#   --upstream   also run upstream's e2e.test, focus "[sig-network] Services" (E2E_TEST=path to an
#                e2e.test binary; otherwise kubernetes-test-linux-<arch>.tar.gz of the cluster's
#                version is downloaded from dl.k8s.io; ginkgo from the same tarball runs it in parallel)
#   --keep       keep the cluster and the client containers (prints how to delete them)
#   --no-build   use IMAGE as it is in the local Docker instead of building it
#   --name NAME  cluster name (default bpfproxy-e2e-<time>-<pid>: runs never collide)
#
# Env: IMAGE (default bpfproxy:kind-e2e), BASE_IMAGE (Dockerfile build arg), KIND_NODE_IMAGE
# (kindest/node:vX.Y.Z; default: kind's), KIND, KUBECTL, DOCKER (commands), E2E_TEST, E2E_FOCUS,
# E2E_SKIP, E2E_PARALLEL (ginkgo nodes, default 4).
#
# Needs Docker with image pulls, kind, kubectl, Node.js with this repo's `npm ci` done, curl and
# tar for --upstream. It cannot run on the project's CI machine (no registry); there, CI lints it
# (shellcheck) and validates its manifests with a server-side dry run (test/deploy).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

upstream=0 keep=0 build=1
name=bpfproxy-e2e-$(date +%s)-$$
while [ $# -gt 0 ]; do
  case "$1" in
    --upstream) upstream=1 ;;
    --keep) keep=1 ;;
    --no-build) build=0 ;;
    --name) name=${2:?--name needs a value}; shift ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "kind-e2e.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

IMAGE=${IMAGE:-bpfproxy:kind-e2e}
KIND=${KIND:-kind}
KUBECTL=${KUBECTL:-kubectl}
DOCKER=${DOCKER:-docker}
E2E_FOCUS=${E2E_FOCUS:-\[sig-network\] Services}
# Disruptive and serial tests need a cluster of their own; LoadBalancer tests a cloud; the rest
# are features kind or this cluster does not have.
E2E_SKIP=${E2E_SKIP:-\[Serial\]|\[Disruptive\]|\[Flaky\]|\[Feature:|LoadBalancer|ESIPP|GCE|IPv6|\[sig-windows\]}
E2E_PARALLEL=${E2E_PARALLEL:-4}

log() { echo "== $*"; }
die() { echo "kind-e2e: error: $*" >&2; exit 1; }

for tool in "$DOCKER" "$KIND" "$KUBECTL" node npx; do
  command -v "$tool" >/dev/null || die "$tool not found on PATH"
done
[ "$upstream" -eq 0 ] || command -v curl >/dev/null || [ -n "${E2E_TEST:-}" ] || die "--upstream needs curl (or E2E_TEST)"
"$DOCKER" info >/dev/null 2>&1 || die "no Docker daemon answers '$DOCKER info'"
[ -d node_modules ] || die "run npm ci first (the e2e specs run with this repo's ava and tsx)"
[[ "$name" =~ ^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$ ]] || die "cluster name '$name': lowercase letters, digits and dashes, at most 42"

work=$(mktemp -d "${TMPDIR:-/tmp}/bpfproxy-kind-e2e.XXXXXX")
kubeconfig=$work/kubeconfig
clients=("$name-client-1" "$name-client-2")
k() { "$KUBECTL" --kubeconfig "$kubeconfig" "$@"; }

cleanup() {
  local status=$?
  set +e
  if [ "$status" -ne 0 ] && [ -f "$kubeconfig" ]; then
    echo "== failed (exit $status): the cluster as it was" >&2
    k get nodes -o wide >&2
    k get pods -A -o wide >&2
    k -n kube-system logs -l app.kubernetes.io/name=bpfproxy --all-containers --prefix --tail=60 >&2
  fi
  if [ "$keep" -eq 1 ]; then
    echo "== kept: cluster $name (kubeconfig $kubeconfig), clients ${clients[*]}"
    echo "   delete with: $KIND delete cluster --name $name; $DOCKER rm -f ${clients[*]}"
  else
    "$DOCKER" rm -f "${clients[@]}" >/dev/null 2>&1
    if "$KIND" get clusters 2>/dev/null | grep -qx "$name"; then
      log "deleting cluster $name"
      "$KIND" delete cluster --name "$name"
    fi
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "kind cluster $name (deploy/kind/cluster.yaml: no kube-proxy, 1 control plane, 2 workers)"
create=(create cluster --name "$name" --config deploy/kind/cluster.yaml --kubeconfig "$kubeconfig")
[ -z "${KIND_NODE_IMAGE:-}" ] || create+=(--image "$KIND_NODE_IMAGE")
"$KIND" "${create[@]}"
if k -n kube-system get daemonset kube-proxy >/dev/null 2>&1; then die "the cluster runs kube-proxy: kubeProxyMode none was not applied"; fi

if [ "$build" -eq 1 ]; then
  log "building $IMAGE"
  build_args=()
  [ -z "${BASE_IMAGE:-}" ] || build_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
  "$DOCKER" build "${build_args[@]}" --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)" -t "$IMAGE" .
fi
log "loading $IMAGE onto the nodes"
"$KIND" load docker-image "$IMAGE" --name "$name"

# The API server as the nodes reach it: the control-plane node's address on kind's network.
apiserver=$("$DOCKER" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name-control-plane")
[ -n "$apiserver" ] || die "no address for node $name-control-plane"
network=$("$DOCKER" inspect -f '{{range .NetworkSettings.Networks}}{{.NetworkID}}{{end}}' "$name-control-plane")
log "deploying bpfproxy (deploy/overlays/kind, API server https://$apiserver:6443)"
overlay=$work/overlay
mkdir -p "$overlay"
cat >"$overlay/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$overlay" "$repo/deploy/overlays/kind")
configMapGenerator:
  - name: bpfproxy-apiserver
    behavior: replace
    literals:
      - KUBERNETES_SERVICE_HOST=$apiserver
      - KUBERNETES_SERVICE_PORT=6443
images:
  - name: bpfproxy
    newName: ${IMAGE%:*}
    newTag: ${IMAGE##*:}
EOF
k apply -k "$overlay"
k -n kube-system rollout status daemonset/bpfproxy --timeout=5m
# CoreDNS reaches the API server through the `kubernetes` Service: it gets ready only once
# bpfproxy serves ClusterIPs. The first end-to-end proof, before any spec.
k -n kube-system rollout status deployment/coredns --timeout=5m
k wait --for=condition=Ready nodes --all --timeout=5m

log "outside clients on the nodes' network: ${clients[*]}"
for c in "${clients[@]}"; do
  "$DOCKER" run -d --name "$c" --network "$network" --cap-add NET_ADMIN \
    registry.k8s.io/e2e-test-images/agnhost:2.53 pause >/dev/null
done

log "the project's e2e specs (test/e2e) against the cluster"
BPFPROXY_E2E_KUBECONFIG=$kubeconfig \
BPFPROXY_E2E_CLIENTS=$(IFS=,; echo "${clients[*]}") \
BPFPROXY_E2E_KUBECTL=$KUBECTL \
  npx ava test/e2e

if [ "$upstream" -eq 1 ]; then
  e2e_test=${E2E_TEST:-}
  ginkgo=
  if [ -z "$e2e_test" ]; then
    version=$(k version -o json | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).serverVersion.gitVersion))')
    arch=$(case "$(uname -m)" in x86_64) echo amd64 ;; aarch64) echo arm64 ;; *) uname -m ;; esac)
    log "downloading upstream's e2e tests for $version ($arch)"
    curl -fsSL "https://dl.k8s.io/$version/kubernetes-test-linux-$arch.tar.gz" |
      tar -xz -C "$work" kubernetes/test/bin/e2e.test kubernetes/test/bin/ginkgo
    e2e_test=$work/kubernetes/test/bin/e2e.test
    ginkgo=$work/kubernetes/test/bin/ginkgo
  fi
  log "upstream e2e: focus '$E2E_FOCUS', skip '$E2E_SKIP'"
  e2e_args=(--kubeconfig="$kubeconfig" --provider=local --report-dir="$work/e2e-report"
    --ginkgo.focus="$E2E_FOCUS" --ginkgo.skip="$E2E_SKIP")
  if [ -n "$ginkgo" ]; then
    "$ginkgo" --nodes="$E2E_PARALLEL" --focus="$E2E_FOCUS" --skip="$E2E_SKIP" "$e2e_test" -- \
      --kubeconfig="$kubeconfig" --provider=local --report-dir="$work/e2e-report"
  else
    "$e2e_test" "${e2e_args[@]}"
  fi
fi

log "passed"
