#!/usr/bin/env bash
# Builds the agent image with Debian's docker.io from a locally bootstrapped Debian base and runs
# the lab check inside it: a container with the lab's privileges and no network of its own
# (--network none) brings up a lab of network namespaces, loads the BPF datapath, serves a request, and tears down.
#
#   hack/docker-smoke.sh [--purge]     as root
#
#   --purge   also remove the images and the daemon's data root afterwards (default: kept, so a
#             second run reuses the base image and the build cache)
#
# Env: IMAGE (default bpfproxy:smoke), BASE_IMAGE (default bpfproxy-base:bookworm, built by
# hack/build-base-image.sh when missing), DOCKER (client command).
#
# The host is left as it was: docker.io and debootstrap are installed from Debian when missing; a
# daemon that already answers is used as it is; otherwise one is started for this run alone, with
# its own socket, state and data root, no bridge, no iptables/ip6tables rules, no ip_forward
# change, and stopped again at the end. Builds use the host's network (to reach Debian's and npm's
# registries); the container under test has none.
set -euo pipefail
cd "$(dirname "$0")/.."

purge=0
for arg in "$@"; do
  case "$arg" in
    --purge) purge=1 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "docker-smoke.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

IMAGE=${IMAGE:-bpfproxy:smoke}
BASE_IMAGE=${BASE_IMAGE:-bpfproxy-base:bookworm}
STATE_DIR=/run/bpfproxy-docker-smoke
DATA_ROOT=/var/lib/bpfproxy-docker-smoke
container=bpfproxy-smoke-$$

log() { echo "== $*"; }
die() { echo "docker-smoke: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (dockerd, debootstrap, a privileged container)"

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]} from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's client matches Debian's daemon; another docker on PATH may be newer than it speaks.
if [ -z "${DOCKER:-}" ]; then
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
export DOCKER

dockerd_pid=
had_run_docker=1
cleanup() {
  local status=$?
  set +e
  "$DOCKER" rm -f "$container" "$container-agent" >/dev/null 2>&1
  if [ "$purge" -eq 1 ]; then
    "$DOCKER" image rm -f "$IMAGE" "$BASE_IMAGE" >/dev/null 2>&1
    "$DOCKER" image prune -f >/dev/null 2>&1
  fi
  if [ -n "$dockerd_pid" ]; then
    log "stopping the dockerd this script started (pid $dockerd_pid)"
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$dockerd_pid" 2>/dev/null
    wait "$dockerd_pid" 2>/dev/null
    # Nothing of it may stay mounted (overlay layers, its containerd's state).
    findmnt -n -l -o TARGET | grep -E "^($STATE_DIR|$DATA_ROOT)(/|$)" | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$STATE_DIR"
    # dockerd makes /run/docker/plugins whatever its exec root; empty, it goes if it was not there.
    [ "$had_run_docker" -eq 1 ] || rmdir /run/docker/plugins /run/docker 2>/dev/null
    [ "$purge" -eq 1 ] && rm -rf --one-file-system "$DATA_ROOT"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if "$DOCKER" info >/dev/null 2>&1; then
  log "using the Docker daemon that answers ($("$DOCKER" version -f '{{.Server.Version}}'))"
else
  if [ -e /run/docker ]; then had_run_docker=1; else had_run_docker=0; fi
  mkdir -p "$STATE_DIR" "$DATA_ROOT"
  log "starting dockerd (socket $STATE_DIR/docker.sock, data $DATA_ROOT; no bridge, no iptables)"
  dockerd \
    --host "unix://$STATE_DIR/docker.sock" \
    --exec-root "$STATE_DIR/exec" \
    --pidfile "$STATE_DIR/dockerd.pid" \
    --data-root "$DATA_ROOT" \
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    >"$STATE_DIR/dockerd.log" 2>&1 &
  dockerd_pid=$!
  export DOCKER_HOST="unix://$STATE_DIR/docker.sock"
  for _ in $(seq 1 120); do
    "$DOCKER" info >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || { tail -n 30 "$STATE_DIR/dockerd.log" >&2; die "dockerd exited (log above)"; }
    sleep 0.5
  done
  "$DOCKER" info >/dev/null 2>&1 || { tail -n 30 "$STATE_DIR/dockerd.log" >&2; die "dockerd did not answer within 60 s"; }
  log "dockerd $("$DOCKER" version -f '{{.Server.Version}}') up, storage driver $("$DOCKER" info -f '{{.Driver}}')"
fi

log "base image $BASE_IMAGE"
started=$SECONDS
hack/build-base-image.sh "$BASE_IMAGE" >/dev/null
log "base image ready in $((SECONDS - started)) s"

log "docker build $IMAGE (BASE_IMAGE=$BASE_IMAGE)"
started=$SECONDS
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
version=$(node -p 'require("./package.json").version' 2>/dev/null || echo unknown)
build_log=$(mktemp)
if ! DOCKER_BUILDKIT=0 "$DOCKER" build --network host \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg VERSION="$version" --build-arg REVISION="$revision" \
    -t "$IMAGE" . >"$build_log" 2>&1; then
  tail -n 40 "$build_log" >&2
  rm -f "$build_log"
  die "docker build failed (last lines above)"
fi
grep -E '^(Step [0-9]+/|Successfully)' "$build_log" | sed 's/^/  /' | tail -n 4
rm -f "$build_log"
log "built in $((SECONDS - started)) s"
# Stages of earlier builds (untagged, unused) go; this build's layers stay as the next one's cache.
"$DOCKER" image prune -f >/dev/null

size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
base_size=$("$DOCKER" image inspect -f '{{.Size}}' "$BASE_IMAGE")
awk -v s="$size" -v b="$base_size" -v i="$IMAGE" -v bi="$BASE_IMAGE" \
  'BEGIN { printf "== image %s: %.1f MB (base %s %.1f MB, bpfproxy layers %.1f MB)\n", i, s / 1e6, bi, b / 1e6, (s - b) / 1e6 }'

log "the runtime image has no build tools"
# shellcheck disable=SC2016 # expanded by the container's shell
"$DOCKER" run --rm --network none --entrypoint /bin/sh "$IMAGE" -c '
  for t in clang gcc cc g++ make cmake npm; do
    if command -v "$t" >/dev/null; then echo "  unexpected in the runtime image: $t"; exit 1; fi
  done
  echo "  none of clang gcc cc g++ make cmake npm"'

log "bpfproxy version (the image's own command, unprivileged)"
"$DOCKER" run --rm --network none --entrypoint bpfproxy "$IMAGE" version | sed 's/^/  /'

# The check inside the container: its own network namespace (none: only lo) and mount namespace,
# so the lab's namespaces, /run/netns and the bpffs mounts are the container's, never the host's.
read -r -d '' check <<'EOF' || true
set -eu
mount -t bpf -o mode=0700 bpf /sys/fs/bpf
mkdir -p /run/netns
echo "-- bpfproxy lab up (2 nodes, each running a bpfproxy agent; 1 outside client)"
bpfproxy lab up --name smoke --nodes 2 --clients 1
trap 'echo "-- bpfproxy lab down"; bpfproxy lab down --name smoke' EXIT
echo "-- bpfproxy lab apply: Deployment hostnames (2 replicas), Service hostnames (ClusterIP 198.19.0.80:80 -> 9376)"
bpfproxy lab apply --name smoke -f - <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: { name: hostnames, namespace: default }
spec:
  replicas: 2
  selector: { matchLabels: { app: hostnames } }
  template:
    metadata: { labels: { app: hostnames } }
    spec: { containers: [ { name: hostnames, ports: [ { containerPort: 9376 } ] } ] }
---
apiVersion: v1
kind: Service
metadata: { name: hostnames, namespace: default }
spec:
  clusterIP: 198.19.0.80
  selector: { app: hostnames }
  ports: [ { port: 80, targetPort: 9376, protocol: TCP } ]
YAML
bpfproxy lab pod add --name smoke client --node node-2 --port 8080
echo "-- bpfproxy lab request client 198.19.0.80 80 --count 40"
answer=$(bpfproxy lab request --name smoke client 198.19.0.80 80 --count 40)
echo "$answer"
echo "$answer" | node -e '
  const t = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const pods = Object.keys(t.byAnswer);
  const n = Object.values(t.byAnswer).reduce((a, b) => a + b, 0);
  const ok = n === 40 && Object.keys(t.byError).length === 0 && pods.length === 2 && pods.every((p) => p.startsWith("hostnames-"));
  console.log(ok ? "check: 40 of 40 answered through the ClusterIP, by both replicas" : "check FAILED: expected 40 answers from the 2 hostnames pods");
  process.exit(ok ? 0 : 1)'
echo "-- bpfproxy demo (the Services tutorial, each step checked)"
bpfproxy demo
EOF

# The agent alone, with the DaemonSet's capabilities only (deploy/base/daemonset.yaml) and the
# runtime's default seccomp profile, read-only /sys and /proc/sys, as a Kubernetes pod has them:
# it mounts nothing but the bpffs, loads and pins the datapath, attaches XDP and tcx to a veth,
# serves a Service from a file source and reports healthy. Debian's docker 20.10 does not know the
# names CAP_BPF and CAP_PERFMON; the kernel grants what they grant to CAP_SYS_ADMIN too
# (bpf_capable(), perfmon_capable()), so NET_ADMIN + SYS_ADMIN is the same privilege in effect.
read -r -d '' agent_check <<'EOF' || true
set -eu
grep CapEff /proc/self/status
mount -t bpf -o mode=0700 bpf /sys/fs/bpf
ip link add eth0 type veth peer name veth-pod1
ip addr add 198.18.0.11/24 dev eth0
ip link set eth0 up
ip link set veth-pod1 up
ip route add default via 198.18.0.1 dev eth0
mkdir -p /tmp/cluster
cat >/tmp/cluster/hostnames.yaml <<'YAML'
apiVersion: v1
kind: Node
metadata: { name: smoke-node }
status: { addresses: [ { type: InternalIP, address: 198.18.0.11 } ] }
---
apiVersion: v1
kind: Service
metadata: { name: hostnames, namespace: default }
spec: { clusterIP: 198.19.0.80, ports: [ { port: 80, targetPort: 9376, protocol: TCP } ] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: hostnames-1, namespace: default, labels: { kubernetes.io/service-name: hostnames } }
addressType: IPv4
endpoints: [ { addresses: [ 198.18.129.2 ], conditions: { ready: true }, nodeName: smoke-node } ]
ports: [ { port: 9376, protocol: TCP } ]
YAML
bpfproxy agent --source-dir /tmp/cluster --hostname-override smoke-node --uplink-interface eth0 \
  --xdp-mode generic --log-format text >/tmp/agent.log 2>&1 &
agent=$!
node -e '
  const deadline = Date.now() + 60000;
  (async () => {
    for (;;) {
      const r = await fetch("http://127.0.0.1:10256/healthz").catch(() => undefined);
      if (r?.status === 200) { console.log("healthz:", r.status, await r.text()); return; }
      if (Date.now() > deadline) { console.error("agent not healthy within 60 s"); process.exit(1); }
      await new Promise((res) => setTimeout(res, 250));
    }
  })()' || { cat /tmp/agent.log; exit 1; }
ip link show eth0 | grep -o "prog/xdp id [0-9]*" | sed "s/^/attached: /"
bytes=0
for pin in $(find /sys/fs/bpf/bpfproxy -type f); do
  b=$(bpftool -j map show pinned "$pin" 2>/dev/null | node -e 'try { console.log(JSON.parse(require("fs").readFileSync(0, "utf8")).bytes_memlock ?? 0) } catch { console.log(0) }')
  bytes=$((bytes + b))
done
echo "pinned maps: $(find /sys/fs/bpf/bpfproxy -type f | wc -l) pins, $((bytes / 1048576)) MiB of map memory with the default map sizes"
kill -TERM "$agent"
wait "$agent" || { cat /tmp/agent.log; exit 1; }
echo "agent stopped on SIGTERM (exit 0); its pins stay for the next agent"
EOF

# What --privileged would give that the lab needs, spelled out: SYS_ADMIN (network namespaces,
# mounts, and bpf() itself, which the kernel allows with SYS_ADMIN where a runtime does not know
# CAP_BPF/CAP_PERFMON, as Debian's docker 20.10 does not), NET_ADMIN (links, addresses, XDP and
# tc), NET_RAW (ping); no seccomp or AppArmor filter, writable /proc/sys for the namespaces'
# sysctls. Not --privileged itself, because that asks for every capability, and runc refuses to
# start where the host's own bounding set lacks one (as in some sandboxes: CAP_SYS_RESOURCE).
privileged_for_lab=(
  --cap-drop ALL --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add NET_RAW
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined
)
log "lab check in a container with the lab's privileges and no network (--network none)"
started=$SECONDS
set +e
"$DOCKER" run --rm --name "$container" "${privileged_for_lab[@]}" --network none --tmpfs /run --tmpfs /tmp \
  --entrypoint /usr/bin/tini "$IMAGE" -- /bin/sh -c "$check" 2>&1 | sed 's/^/  /'
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || die "the lab check failed in the container (exit $status)"
log "lab check passed in $((SECONDS - started)) s"

log "the agent with the DaemonSet's capabilities only (NET_ADMIN, SYS_ADMIN; default seccomp; read-only root)"
set +e
# --read-only as the DaemonSet's readOnlyRootFilesystem: the agent writes only under the bpffs.
"$DOCKER" run --rm --name "$container-agent" --cap-drop ALL --cap-add NET_ADMIN --cap-add SYS_ADMIN \
  --read-only --network none --tmpfs /run --tmpfs /tmp --entrypoint /usr/bin/tini "$IMAGE" -- /bin/sh -c "$agent_check" 2>&1 | sed 's/^/  /'
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || die "the agent check failed in the container (exit $status)"
echo "docker smoke: passed (image $IMAGE, $(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }'))"
