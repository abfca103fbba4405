#!/usr/bin/env bash
# Re-vendors libbpf's upstream release into native/vendor/libbpf from Debian's source archive,
# which serves the upstream tarball as libbpf_<version>.orig.tar.gz. Only the library sources,
# headers and licences are kept; VERSION and SHA256SUMS record what was taken.
#
#   hack/vendor-libbpf.sh 1.4.6 1.4.6-1~bpo12+1
#
# The second argument is the Debian source version whose .orig tarball carries that release.
set -euo pipefail

version=${1:?usage: vendor-libbpf.sh UPSTREAM_VERSION DEBIAN_SOURCE_VERSION}
debver=${2:?usage: vendor-libbpf.sh UPSTREAM_VERSION DEBIAN_SOURCE_VERSION}
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/native/vendor/libbpf"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
# apt-get may fail on the .dsc/.debian.tar.xz of a backport while still fetching the .orig tarball.
apt-get source --download-only "libbpf=$debver" >/dev/null 2>&1 || true
tarball="libbpf_${version}.orig.tar.gz"
[ -f "$tarball" ] || { echo "vendor-libbpf: $tarball was not fetched (is a deb-src entry configured?)" >&2; exit 1; }
tar xzf "$tarball"
src="$work/libbpf-$version"

rm -rf "$dest"
mkdir -p "$dest"
cp -r "$src/src" "$src/include" "$dest/"
cp "$src"/LICENSE* "$src/README.md" "$src/CHECKPOINT-COMMIT" "$dest/"
rm -f "$dest/src/Makefile" "$dest/src/libbpf.pc.template"
echo "$version" > "$dest/VERSION"
(cd "$work" && sha256sum "$tarball") > "$dest/SHA256SUMS"
echo "vendored libbpf $version into ${dest#"$root"/}: $(cut -d' ' -f1 "$dest/SHA256SUMS")"
