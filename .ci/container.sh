#!/usr/bin/env bash
# container.sh - CI stage for the container image: build it with
# examples/container/build.sh and run it with podman (see
# shared/reference/containers.md for the workarounds this machine kind needs):
#   1. the image's user, entrypoint, volume and healthcheck, and that it has no shell;
#   2. `pandasync demo` inside it;
#   3. `run -once` as a read-only container, the spec and the state directory as
#      volumes and the secrets from an env file, against the embedded directory
#      and emulator of `pandasync demo -serve` on the host: the first pass
#      applies (exit 2), the second has nothing to do (exit 0);
#   4. `run` detached: `pandasync healthcheck` inside the container answers
#      /healthz, and /readyz after a pass (POST /sync), and SIGTERM (podman stop)
#      ends it with exit 0.
# Prints how long the stage took. Installs podman and runc with apt if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s.%N)
TAG=${TAG:-pandasync:ci}
PORT=${PANDASYNC_CI_ADMIN_PORT:-19090}

if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
	echo "== installing podman and runc"
	apt-get install -y --no-install-recommends podman runc >/dev/null ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends podman runc >/dev/null; }
fi
work=$(mktemp -d /tmp/pandasync-ci-container.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	"${P[@]}" rm -f pandasync-ci >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
# Hybrid cgroups and a capped RLIMIT_NOFILE: runc, cgroupfs, no default ulimits.
# --no-healthcheck: podman schedules HEALTHCHECK with systemd timers, and there is
# no systemd here; the probe is run with podman exec instead.
printf '[containers]\ndefault_ulimits = []\n' >"$work/containers.conf"
export CONTAINERS_CONF=$work/containers.conf
P=(podman --storage-driver vfs --runtime runc --cgroup-manager cgroupfs)

echo "== build $TAG"
tb=$(date +%s.%N)
PODMAN_FLAGS="--storage-driver vfs" bash examples/container/build.sh "$TAG" | tail -n 1
build_s=$(awk -v a="$tb" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

echo "== image"
cfg=$("${P[@]}" image inspect "$TAG" --format '{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.Volumes}}|{{json .Config.Healthcheck.Test}}')
echo "$cfg"
IFS='|' read -r user entry volumes health <<<"$cfg"
[ "$user" = "65532:65532" ] || { echo "image user is $user, want 65532:65532" >&2; exit 1; }
[ "$entry" = '["/pandasync"]' ] || { echo "entrypoint is $entry" >&2; exit 1; }
case "$volumes" in *'/var/lib/pandasync'*) ;; *) echo "no state volume: $volumes" >&2; exit 1 ;; esac
case "$health" in *healthcheck*) ;; *) echo "no HEALTHCHECK: $health" >&2; exit 1 ;; esac
if "${P[@]}" run --rm --no-healthcheck --network host --entrypoint /bin/sh "$TAG" -c true >/dev/null 2>&1; then
	echo "the image has a shell" >&2
	exit 1
fi
echo "user 65532, entrypoint /pandasync, volume /var/lib/pandasync, HEALTHCHECK set, no /bin/sh"
echo "image size: $("${P[@]}" image inspect "$TAG" --format '{{.Size}}') bytes"

echo "== pandasync demo inside the image"
"${P[@]}" run --rm --no-healthcheck --network host "$TAG" demo >"$work/demo.txt"
grep -q 'No changes. Asset Panda matches Active Directory.' "$work/demo.txt" || { cat "$work/demo.txt"; exit 1; }
tail -n 1 "$work/demo.txt"

echo "== run -once in a read-only container with spec and state volumes"
go build -o "$work/pandasync" ./cmd/pandasync
# demo -serve writes the spec pointed at its servers (demo.d) and their
# credentials (demo.env), and serves without applying anything.
"$work/pandasync" demo -serve -dir "$work" -ldap-listen 127.0.0.1:0 -api-listen 127.0.0.1:0 >"$work/serve.txt" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
	grep -q 'Serving until interrupted' "$work/serve.txt" && break
	sleep 0.1
done
grep -q 'Serving until interrupted' "$work/serve.txt" || { cat "$work/serve.txt"; exit 1; }
mkdir -p "$work/state"
chmod -R a+rX "$work/demo.d"
chown 65532:65532 "$work/state"
sed -n 's/^export //p' "$work/demo.env" >"$work/secrets.env"
run=("${P[@]}" run --rm --no-healthcheck --network host --read-only --cap-drop ALL --security-opt no-new-privileges
	-v "$work/demo.d:/etc/pandasync/pandasync.d:ro" -v "$work/state:/var/lib/pandasync"
	--env-file "$work/secrets.env")
set +e
"${run[@]}" "$TAG" -f /etc/pandasync/pandasync.d run -once >"$work/once1.txt" 2>&1
first=$?
"${run[@]}" "$TAG" -f /etc/pandasync/pandasync.d run -once >"$work/once2.txt" 2>&1
second=$?
set -e
grep 'Apply complete' "$work/once1.txt" || true
echo "first pass exit $first (want 2: changes applied), second pass exit $second (want 0: nothing to do)"
if [ "$first" != 2 ] || [ "$second" != 0 ]; then
	cat "$work/once1.txt" "$work/once2.txt"
	exit 1
fi

echo "== run detached: healthcheck inside the container, then SIGTERM"
if ss -Hltn "sport = :$PORT" | grep -q .; then
	echo "port $PORT is taken; set PANDASYNC_CI_ADMIN_PORT" >&2
	exit 1
fi
"${P[@]}" run -d --name pandasync-ci --no-healthcheck --network host --read-only --cap-drop ALL --security-opt no-new-privileges \
	-v "$work/demo.d:/etc/pandasync/pandasync.d:ro" -v "$work/state:/var/lib/pandasync" \
	--env-file "$work/secrets.env" "$TAG" -f /etc/pandasync/pandasync.d run -listen "127.0.0.1:$PORT" >/dev/null
# probe PATH: `pandasync healthcheck` inside the container, until it passes.
probe() {
	for _ in $(seq 1 100); do
		if "${P[@]}" exec pandasync-ci /pandasync healthcheck -url "http://127.0.0.1:$PORT$1" >"$work/health.txt" 2>&1; then
			echo "healthcheck $1: $(cat "$work/health.txt")"
			return
		fi
		sleep 0.2
	done
	cat "$work/health.txt"
	"${P[@]}" logs pandasync-ci
	exit 1
}
probe /healthz
# Ask for a pass now (the demo's schedule starts at 02:00), then wait for ready.
curl -fsS -X POST "http://127.0.0.1:$PORT/sync" >/dev/null
probe /readyz
"${P[@]}" stop -t 20 pandasync-ci >/dev/null
code=$("${P[@]}" inspect pandasync-ci --format '{{.State.ExitCode}}')
echo "after SIGTERM: exit $code (want 0)"
[ "$code" = 0 ] || { "${P[@]}" logs pandasync-ci; exit 1; }

echo "container stage passed in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s (image build $build_s s)"
