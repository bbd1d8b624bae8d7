#!/usr/bin/env bash
# kube-apiserver.sh - a throw-away Kubernetes API server (kube-apiserver and
# etcd, built from the Go module proxy) on loopback, for pandasync's leader
# election tests and the manifests' server-side dry run. No kubelet, no
# controllers: objects are stored and validated, nothing runs.
#
# Usage:
#   kube-apiserver.sh DIR build    build kube-apiserver and etcd from .ci/kube (the wrapper
#                                  module) into $KUBE_BIN_DIR. The first build takes about
#                                  10 minutes on 2 cores; the Go build cache makes later ones fast.
#   kube-apiserver.sh DIR [up]     build if needed, start etcd and kube-apiserver with their
#                                  data, certificates and logs in DIR, wait until /readyz says
#                                  ok and the default namespace exists, create the test
#                                  namespace with examples/kubernetes/rbac.yaml in it, and write
#                                  DIR/kube.env (below). Prints how long the build and the start took.
#   kube-apiserver.sh DIR down     stop what "up" started from DIR (by the pids in DIR/*.pid)
#   kube-apiserver.sh DIR status   exit 0 if the API server answers /readyz ok
#
# DIR/kube.env (shell-sourceable):
#   KUBE_APISERVER_URL       https://127.0.0.1:$KUBE_PORT
#   KUBE_CA_FILE             the API server's self-signed CA and certificate
#   KUBE_ADMIN_TOKEN         a system:masters token (setup, kubectl)
#   KUBE_ADMIN_KUBECONFIG    kubeconfig with that token
#   KUBE_KUBECONFIG          kubeconfig of the pandasync ServiceAccount in $KUBE_NAMESPACE:
#                            a token that can only get/create/update the Lease (least privilege)
#   KUBE_NAMESPACE           the test namespace (pandasync-test)
#   KUBE_LEASE_NAME          the Lease the Role allows (pandasync)
#
# Knobs (environment):
#   KUBE_PORT=16443  KUBE_ETCD_PORT=23790  KUBE_ETCD_PEER_PORT=23800
#   KUBE_BIN_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/pandasync/kube-bin
#   KUBE_TIMEOUT=120         seconds to wait for /readyz
set -euo pipefail

DIR=${1:?usage: kube-apiserver.sh DIR [build|up|down|status]}
ACTION=${2:-up}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KUBE_PORT=${KUBE_PORT:-16443}
KUBE_ETCD_PORT=${KUBE_ETCD_PORT:-23790}
KUBE_ETCD_PEER_PORT=${KUBE_ETCD_PEER_PORT:-23800}
KUBE_BIN_DIR=${KUBE_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pandasync/kube-bin}
KUBE_TIMEOUT=${KUBE_TIMEOUT:-120}
NS=pandasync-test
LEASE=pandasync

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

build() {
	local t0
	t0=$(now)
	mkdir -p "$KUBE_BIN_DIR"
	# The module is pinned by .ci/kube/go.mod and go.sum; go build downloads
	# from the module proxy into the module cache and compiles through the
	# build cache, so a second build only links.
	(cd "$ROOT/.ci/kube" &&
		go build -trimpath -o "$KUBE_BIN_DIR/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver &&
		go build -trimpath -o "$KUBE_BIN_DIR/etcd" go.etcd.io/etcd/server/v3)
	echo "kube-apiserver and etcd built in $(since "$t0") s (into $KUBE_BIN_DIR)"
}

# alive PIDFILE NAME: the process in PIDFILE runs and is NAME.
alive() {
	local pid
	[ -f "$1" ] || return 1
	pid=$(cat "$1")
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$2"
}

# running PID: PID is a live process, not a zombie. Unlike alive, it does not
# look at the command line: just after "cmd &" the child may not have exec'd
# yet, and its command line is still this script's.
running() {
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

# exited NAME PID: say how NAME ended, from the shell's record of its child.
exited() {
	local rc=0
	wait "$2" 2>/dev/null || rc=$?
	echo "kube-apiserver.sh: $1 (pid $2) exited with status $rc" >&2
}

stop() {
	local f name pid i
	for f in kube-apiserver etcd; do
		name=$KUBE_BIN_DIR/$f
		if alive "$DIR/$f.pid" "$name"; then
			pid=$(cat "$DIR/$f.pid")
			kill "$pid"
			for i in $(seq 1 50); do
				alive "$DIR/$f.pid" "$name" || break
				sleep 0.2
			done
			if alive "$DIR/$f.pid" "$name"; then kill -9 "$pid"; fi
		fi
		rm -f "$DIR/$f.pid"
	done
}

readyz() {
	[ -f "$DIR/tokens.csv" ] || return 1
	[ "$(curl -s --max-time 5 --cacert "$DIR/certs/apiserver.crt" \
		-H "Authorization: Bearer $(cut -d, -f1 "$DIR/tokens.csv")" \
		"https://127.0.0.1:$KUBE_PORT/readyz" 2>/dev/null)" = ok ]
}

port_free() {
	! ss -Hltn "sport = :$1" | grep -q .
}

kubeconfig() { # FILE TOKEN NAMESPACE
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster:
      server: https://127.0.0.1:$KUBE_PORT
      certificate-authority: $DIR/certs/apiserver.crt
users:
  - name: user
    user:
      token: $2
contexts:
  - name: test
    context: {cluster: test, user: user, namespace: $3}
current-context: test
EOF
	chmod 0600 "$1"
}

up() {
	if alive "$DIR/kube-apiserver.pid" "$KUBE_BIN_DIR/kube-apiserver" && readyz; then
		echo "kube-apiserver already runs from $DIR"
		cat "$DIR/kube.env"
		return
	fi
	stop
	if [ ! -x "$KUBE_BIN_DIR/kube-apiserver" ] || [ ! -x "$KUBE_BIN_DIR/etcd" ] ||
		[ "$ROOT/.ci/kube/go.sum" -nt "$KUBE_BIN_DIR/kube-apiserver" ]; then
		build
	fi
	for p in "$KUBE_PORT" "$KUBE_ETCD_PORT" "$KUBE_ETCD_PEER_PORT"; do
		port_free "$p" || { echo "kube-apiserver.sh: port $p is taken; set KUBE_PORT / KUBE_ETCD_PORT / KUBE_ETCD_PEER_PORT" >&2; exit 1; }
	done
	local t0 token
	t0=$(now)
	rm -rf "$DIR/etcd-data" "$DIR/certs"
	mkdir -p "$DIR/certs"
	if [ ! -f "$DIR/sa.key" ]; then
		openssl genrsa -out "$DIR/sa.key" 2048 2>/dev/null
		openssl rsa -in "$DIR/sa.key" -pubout -out "$DIR/sa.pub" 2>/dev/null
	fi
	token=$(openssl rand -hex 24)
	(umask 077 && echo "$token,admin,admin,system:masters" >"$DIR/tokens.csv")

	setsid "$KUBE_BIN_DIR/etcd" --data-dir "$DIR/etcd-data" \
		--listen-client-urls "http://127.0.0.1:$KUBE_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$KUBE_ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$KUBE_ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$KUBE_ETCD_PEER_PORT" \
		--initial-cluster "default=http://127.0.0.1:$KUBE_ETCD_PEER_PORT" --log-level error \
		</dev/null >"$DIR/etcd.log" 2>&1 &
	local etcd_pid=$!
	echo "$etcd_pid" >"$DIR/etcd.pid"

	setsid "$KUBE_BIN_DIR/kube-apiserver" --etcd-servers="http://127.0.0.1:$KUBE_ETCD_PORT" \
		--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$KUBE_PORT" \
		--cert-dir="$DIR/certs" --endpoint-reconciler-type=none \
		--service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$DIR/sa.pub" \
		--service-account-signing-key-file="$DIR/sa.key" --token-auth-file="$DIR/tokens.csv" \
		--authorization-mode=RBAC --service-cluster-ip-range=10.96.0.0/24 \
		</dev/null >"$DIR/kube-apiserver.log" 2>&1 &
	local apiserver_pid=$!
	echo "$apiserver_pid" >"$DIR/kube-apiserver.pid"

	local deadline=$((SECONDS + KUBE_TIMEOUT))
	until readyz; do
		if ! running "$apiserver_pid" || ! running "$etcd_pid"; then
			running "$etcd_pid" || exited etcd "$etcd_pid"
			running "$apiserver_pid" || exited kube-apiserver "$apiserver_pid"
			echo "kube-apiserver.sh: the end of their logs:" >&2
			tail -n 20 "$DIR/etcd.log" "$DIR/kube-apiserver.log" >&2
			stop
			exit 1
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "kube-apiserver.sh: /readyz not ok after ${KUBE_TIMEOUT}s; see $DIR/kube-apiserver.log" >&2
			stop
			exit 1
		fi
		sleep 0.5
	done
	local ready
	ready=$(since "$t0")

	kubeconfig "$DIR/admin.kubeconfig" "$token" default
	local k=(kubectl --kubeconfig "$DIR/admin.kubeconfig")
	# The default namespace appears a few seconds after /readyz.
	until "${k[@]}" get namespace default >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			echo "kube-apiserver.sh: no default namespace after ${KUBE_TIMEOUT}s" >&2
			stop
			exit 1
		fi
		sleep 0.5
	done
	"${k[@]}" create namespace "$NS" >/dev/null
	"${k[@]}" -n "$NS" apply -f "$ROOT/examples/kubernetes/rbac.yaml" >/dev/null
	local satoken
	satoken=$("${k[@]}" -n "$NS" create token pandasync --duration=24h)
	kubeconfig "$DIR/pandasync.kubeconfig" "$satoken" "$NS"

	(umask 077 && cat >"$DIR/kube.env" <<EOF
KUBE_APISERVER_URL=https://127.0.0.1:$KUBE_PORT
KUBE_CA_FILE=$DIR/certs/apiserver.crt
KUBE_ADMIN_TOKEN=$token
KUBE_ADMIN_KUBECONFIG=$DIR/admin.kubeconfig
KUBE_KUBECONFIG=$DIR/pandasync.kubeconfig
KUBE_NAMESPACE=$NS
KUBE_LEASE_NAME=$LEASE
EOF
	)
	echo "kube-apiserver ready at https://127.0.0.1:$KUBE_PORT: /readyz ok after $ready s, default namespace and RBAC after $(since "$t0") s"
	echo "source $DIR/kube.env; stop with: bash .ci/kube-apiserver.sh $DIR down"
}

case "$ACTION" in
build) build ;;
up) up ;;
down) stop ;;
status) readyz ;;
*)
	echo "usage: kube-apiserver.sh DIR [build|up|down|status]" >&2
	exit 2
	;;
esac
