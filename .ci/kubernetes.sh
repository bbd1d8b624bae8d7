#!/usr/bin/env bash
# kubernetes.sh - CI stage for running on Kubernetes, against a real
# kube-apiserver and etcd on loopback (.ci/kube-apiserver.sh):
#   1. build (cached after the first time, ~10 minutes on 2 cores) and start them;
#   2. server-side dry run of examples/kubernetes and examples/kubernetes/git-sync
#      in a namespace that enforces the "restricted" Pod Security Standard; any
#      warning fails the stage;
#   3. the leader-election tests of reconcile/leader against the API server, as
#      the ServiceAccount of examples/kubernetes/rbac.yaml (least privilege),
#      printing the measured failover times;
#   4. the scenarios with three real `pandasync run -leader-elect` processes and the
#      demo directory and emulator (cmd/pandasync TestLeaderElectionProcesses):
#      exactly one leads, SIGKILL, SIGSTOP past the lease then SIGCONT (the old
#      leader writes nothing after it wakes, per the emulator's request log), and
#      a clean stop;
# then stops the API server. Prints how long each step took.
# Knobs: KUBE_DIR (default: a temporary directory), and those of kube-apiserver.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

dir=${KUBE_DIR:-$(mktemp -d /tmp/pandasync-ci-kube.XXXXXX)}
cleanup() { bash .ci/kube-apiserver.sh "$dir" down || true; [ -n "${KUBE_DIR:-}" ] || rm -rf "$dir"; }
trap cleanup EXIT

echo "== kube-apiserver and etcd"
ts=$(date +%s.%N)
bash .ci/kube-apiserver.sh "$dir" up
start_s=$(since "$ts")
set -a
# shellcheck disable=SC1091
. "$dir/kube.env"
set +a

echo "== manifests: server-side dry run under the restricted Pod Security Standard"
ts=$(date +%s.%N)
k=(kubectl --server "$KUBE_APISERVER_URL" --token "$KUBE_ADMIN_TOKEN" --insecure-skip-tls-verify)
ns=pandasync-manifests
"${k[@]}" create namespace "$ns" >/dev/null
"${k[@]}" label namespace "$ns" pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted >/dev/null
for d in examples/kubernetes examples/kubernetes/git-sync; do
	if ! "${k[@]}" -n "$ns" apply --dry-run=server -f "$d" >"$dir/dry-run.txt" 2>&1; then
		cat "$dir/dry-run.txt" >&2
		exit 1
	fi
	cat "$dir/dry-run.txt"
	if grep -qi warning "$dir/dry-run.txt"; then
		echo "kubernetes.sh: the API server warned about $d" >&2
		exit 1
	fi
done
manifests_s=$(since "$ts")

echo "== leader election against the API server"
ts=$(date +%s.%N)
go test -count=1 -v -run '^TestReal' ./reconcile/leader | tee "$dir/leader.txt" | grep -E '^(--- |ok|FAIL|panic)|_test.go:[0-9]+: '
grep -q '^ok' "$dir/leader.txt"
leader_s=$(since "$ts")

echo "== three pandasync run -leader-elect processes against the API server and the emulator"
ts=$(date +%s.%N)
go test -count=1 -v -run '^TestLeaderElectionProcesses$' ./cmd/pandasync | tee "$dir/processes.txt" | grep -E '^(--- |ok|FAIL|panic)|_test.go:[0-9]+: '
grep -q '^ok' "$dir/processes.txt"
processes_s=$(since "$ts")

echo "kubernetes stage passed in $(since "$t0") s (API server built if needed and started: $start_s s, manifests: $manifests_s s," \
	"leader election: $leader_s s, processes: $processes_s s)"
