#!/usr/bin/env bash
# build.sh [TAG] - build pandasync's container image from this checkout.
#
# Needs Go and podman (or docker, or buildah); pulls nothing: the image is
# FROM scratch with a static binary built here and the host's CA bundle.
# TAG defaults to pandasync:VERSION, VERSION being `git describe` or "dev".
# Knobs: CONTAINER_ENGINE=podman|docker|buildah (default: the first found),
#        CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt, GOARCH (default: the host's),
#        PODMAN_FLAGS (e.g. "--storage-driver vfs").
set -euo pipefail
cd "$(dirname "$0")/../.."

version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
tag=${1:-pandasync:${version}}
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
	for e in podman docker buildah; do
		if command -v "$e" >/dev/null; then engine=$e; break; fi
	done
fi
[ -n "$engine" ] || { echo "build.sh: no podman, docker or buildah on PATH" >&2; exit 1; }
[ -s "$ca" ] || { echo "build.sh: no CA bundle at $ca (install ca-certificates or set CA_BUNDLE)" >&2; exit 1; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ctx/pandasync" ./cmd/pandasync
mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/var/lib" "$ctx/state"
cp "$ca" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/:/sbin/nologin\npandasync:x:65532:65532:pandasync:/var/lib/pandasync:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\npandasync:x:65532:\n' >"$ctx/rootfs/etc/group"
chmod -R go-w "$ctx/rootfs"
cp examples/container/Dockerfile "$ctx/Dockerfile"

args=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision" -t "$tag" -f "$ctx/Dockerfile")
case "$engine" in
podman) # --format docker keeps HEALTHCHECK, which the OCI format has no field for.
	# shellcheck disable=SC2086
	podman ${PODMAN_FLAGS:-} build --format docker "${args[@]}" "$ctx" ;;
buildah) buildah bud --format docker "${args[@]}" "$ctx" ;;
*) "$engine" build "${args[@]}" "$ctx" ;;
esac
echo "built $tag ($(du -k "$ctx/pandasync" | cut -f1) KiB binary) with $engine"
