#!/usr/bin/env bash
# Builds a local Debian bookworm base image for the Dockerfile's BASE_IMAGE from Debian's own
# packages: debootstrap (minbase) from the Debian mirror this machine's apt uses, imported with
# `docker import`. For machines that reach Debian's mirror but no image registry (docs/install.md).
#
#   hack/build-base-image.sh [--force] [IMAGE]     default IMAGE: bpfproxy-base:bookworm
#
# Env: DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR (default: read from /etc/apt), DOCKER (client command).
# Needs root, debootstrap (installed from Debian when missing) and a running Docker daemon.
# Idempotent: an existing IMAGE is kept unless --force.
#
# The base is plain Debian; the Dockerfile brings Node.js itself. One local addition: CA
# certificates this machine added under /usr/local/share/ca-certificates (a site's TLS-inspecting
# proxy, say) are trusted in the base too, so that apt and npm in the build stage reach what the
# host reaches. The image is for this machine; it is never pushed.
set -euo pipefail

SUITE=bookworm
force=0
image=bpfproxy-base:${SUITE}
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "build-base-image.sh: unknown option $arg" >&2; exit 2 ;;
    *) image=$arg ;;
  esac
done
DOCKER=${DOCKER:-docker}

log() { echo "build-base-image: $*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot)"
$DOCKER info >/dev/null 2>&1 || die "no Docker daemon answers '$DOCKER info' (hack/docker-smoke.sh starts one)"

if [ "$force" -eq 0 ] && $DOCKER image inspect "$image" >/dev/null 2>&1; then
  log "$image exists (--force rebuilds it)"
  echo "$image"
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

# The host's Debian mirror: the first deb URI (deb822 .sources or one-line .list) that serves
# $SUITE, or the security suite for the security mirror.
host_mirror() {
  local want=$1 files=() f
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && files+=("$f")
  done
  [ "${#files[@]}" -gt 0 ] || return 0
  awk -v want="$want" '
    function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " want " ") && uri != "" && !found) { print uri; found = 1 } types = ""; suites = ""; uri = "" }
    FNR == 1 { flush() }
    FILENAME ~ /\.sources$/ {
      if ($0 ~ /^[[:space:]]*$/) { flush(); next }
      if ($1 == "Types:") { $1 = ""; types = $0 }
      if ($1 == "URIs:") uri = $2
      if ($1 == "Suites:") { $1 = ""; suites = $0 }
      next
    }
    $1 == "deb" {
      i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i + 1) == want && !found) { print $i; found = 1 }
    }
    END { flush() }
  ' "${files[@]}" | head -n 1
}
mirror=${DEBIAN_MIRROR:-$(host_mirror "$SUITE")}
mirror=${mirror:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-$(host_mirror "$SUITE-security")}
security=${security:-http://deb.debian.org/debian-security}

work=$(mktemp -d /var/tmp/bpfproxy-base.XXXXXX)
root=$work/rootfs
cleanup() {
  set +e
  # debootstrap mounts /proc and /sys inside the target; a failed run can leave them there, and
  # nothing below a mount point may be removed through it.
  if [ -d "$root" ]; then
    findmnt -R -n -l -o TARGET "$root" 2>/dev/null | sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

log "debootstrap $SUITE (minbase) from $mirror into $root"
started=$SECONDS
debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
log "debootstrap took $((SECONDS - started)) s"

# apt sources as in Debian's own images: the suite, its updates and security.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Container-friendly apt defaults, as Debian's docker images have them.
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/docker-no-recommends"
# Documentation, manuals and translations stay out, now and for packages installed later (as in
# Debian's slim images); copyright files stay.
cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "${root:?}"/usr/share/man/* "$root"/usr/share/groff/* "$root"/usr/share/info/* \
  "$root"/usr/share/lintian/* "$root"/usr/share/linda/* "$root"/usr/share/locale/*

# The host's locally added CAs (see the header).
shopt -s nullglob
local_cas=(/usr/local/share/ca-certificates/*.crt)
shopt -u nullglob
if [ "${#local_cas[@]}" -gt 0 ]; then
  log "trusting ${#local_cas[@]} locally added CA certificate(s) of this machine"
  cp "${local_cas[@]}" "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >"$work/ca.log" 2>&1 || { cat "$work/ca.log" >&2; die "update-ca-certificates failed"; }
fi

# What an image does not need: package caches and lists, logs, machine identity.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*
: >"$root/etc/machine-id"
chroot "$root" /bin/sh -c 'command -v apt-get >/dev/null && command -v update-ca-certificates >/dev/null' ||
  die "the bootstrapped root lacks apt-get or ca-certificates"

log "importing as $image"
version=$(cat "$root/etc/debian_version")
tar --numeric-owner --xattrs -C "$root" -c . |
  $DOCKER import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --change "LABEL org.opencontainers.image.description=\"Debian $version ($SUITE, minbase) bootstrapped from $mirror\"" \
    --message "debootstrap --variant=minbase $SUITE from $mirror" \
    - "$image" >/dev/null
log "$image: Debian $version, $($DOCKER image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1 / 1e6}')"
echo "$image"
