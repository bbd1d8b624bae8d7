#!/usr/bin/env bash
# Builds the release binaries of pandasync into dist/:
#   bash .ci/release.sh [VERSION]
# VERSION defaults to `git describe --tags --always --dirty` (v1.2.3,
# v1.2.3-4-gabcdef0, or v1.2.3-dirty). Each binary is static (CGO off),
# built with -trimpath, stamped with -X main.version=VERSION (what
# `pandasync version` prints), and listed in dist/SHA256SUMS.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo "")}
if [ -z "$version" ]; then
	echo "release: no VERSION given and git describe found none" >&2
	exit 1
fi
targets=${TARGETS:-"linux/amd64 linux/arm64 windows/amd64 darwin/arm64"}

rm -rf dist && mkdir dist
for t in $targets; do
	os=${t%/*} arch=${t#*/}
	out="dist/pandasync-$version-$os-$arch"
	[ "$os" = windows ] && out="$out.exe"
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath \
		-ldflags "-s -w -X main.version=$version" -o "$out" ./cmd/pandasync
	echo "built $out"
done
(cd dist && sha256sum pandasync-* > SHA256SUMS)

# The host's binary must say the version it was stamped with.
host="dist/pandasync-$version-$(go env GOOS)-$(go env GOARCH)"
[ "$(go env GOOS)" = windows ] && host="$host.exe"
if [ -x "$host" ]; then
	got=$("$host" version)
	case "$got" in
	"pandasync $version "*) echo "$got" ;;
	*) echo "release: $host says \"$got\", want version $version" >&2; exit 1 ;;
	esac
fi
