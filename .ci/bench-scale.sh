#!/usr/bin/env bash
# bench-scale.sh - the scale goals of change tracking, measured side by side
# on this machine against the Samba DC and the Asset Panda emulator, printed
# as one table (README "Performance"). Not run by CI: it takes minutes and
# its figures are times.
#
#   P1  full plan (pandasync plan) vs ldapsearch -E pr=1000/noprompt with the
#       same base, filter and attributes, as the same reader, interleaved,
#       median of RUNS                                      (goal <= 1.25x)
#   P4  peak RSS of that full plan (/usr/bin/time), also with GOMEMLIMIT
#                                              (goal <= 50 MB at 10k, 150 MB at 100k)
#   P5  a pandasync run pass with nothing changed, change tracking on:
#       writes, LDAP searches, wall                (goal 0, <= 3, <= 1 s)
#   P6  k people changed in AD (k = 1, 10, 100, 1000): LDAP entries read
#       beyond the two identity probes, writes, pass time
#                                 (goal entries <= k, writes = k, linear in k)
#   P7  a person disabled in AD until pandasync has set the record Inactive,
#       with run polling every 30 s                         (goal <= 60 s)
# With THROUGHPUT=1 it also measures write throughput under an emulated rate
# limit (P8): an initial load of TP_RECORDS records and TP_USERS invited users
# with the emulator and the client limited to TP_LIMIT requests per TP_PER
# (default 2000, 300, 40 per 10s): the request rate against the limit and the
# share answered 429.
#
# For each N it makes sure OU=<ou> holds N users, all enabled, and CN=<ou>-All
# holds them (the fixtures of .ci/bench-ad.sh: OU=Bench for 10000, OU=Bench100k
# for 100000, loaded with .ci/samba-dc.sh DIR bulk if missing), makes a
# steady-state Asset Panda (an initial apply into an empty People collection,
# kept in WORK), then measures. P5-P7 run at every N given; the README reports
# them at 100k.
#
# Usage: .ci/bench-scale.sh [N...]          (default: 10000 100000)
# Knobs: DC_ENV (default /tmp/ad/dc.env), RUNS (default 5, 3 at N >= 100000),
#        MEMLIMIT=130MiB (the GOMEMLIMIT of P4's second row; empty skips it),
#        KS="1 10 100 1000", POLL=30s, WORK=DIR (kept; default a temp dir,
#        removed), BENCH_OU_<N>=NAME (the OU for N), THROUGHPUT=1 (P8 too),
#        ONLY_THROUGHPUT=1 (P8 only).
# Needs: ldap-utils, jq, curl, /usr/bin/time, python3 with Samba's bindings.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DC_ENV=${DC_ENV:-${DC_DIR:+$DC_DIR/dc.env}}
DC_ENV=${DC_ENV:-/tmp/ad/dc.env}
[ -f "$DC_ENV" ] || { echo "bench-scale: no $DC_ENV; start the DC first (.ci/samba-dc.sh DIR up)" >&2; exit 1; }
set -a
# shellcheck disable=SC1090
. "$DC_ENV"
set +a
export LDAPTLS_CACERT=$DC_CA_CERT
for tool in ldapsearch ldapmodify jq curl python3 /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench-scale: $tool is needed" >&2; exit 1; }
done
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10000 100000)
if [ -n "${ONLY_THROUGHPUT:-}" ]; then SIZES=() THROUGHPUT=1; fi
MEMLIMIT=${MEMLIMIT-130MiB}
KS=${KS:-1 10 100 1000}
POLL=${POLL:-30s}
READER_DN=${DC_READER_DN:-$DC_BIND_DN}
READER_UPN=${DC_READER_UPN:-$DC_BIND_UPN}
READER_PASSWORD=${DC_READER_PASSWORD:-$DC_BIND_PASSWORD}
EXTRA_ATTRS="givenName sn mail displayName"
ATTRS="objectSid objectGUID userAccountControl sAMAccountName userPrincipalName accountExpires $EXTRA_ATTRS"

KEEP=${WORK:+1}
WORK=${WORK:-$(mktemp -d /tmp/bench-scale.XXXXXX)}
mkdir -p "$WORK"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	if [ -z "$KEEP" ]; then rm -rf "$WORK"; else echo "bench-scale: kept $WORK" >&2; fi
}
trap cleanup EXIT

log() { echo "[bench-scale $(date +%T)] $*" >&2; }
die() { echo "bench-scale: $*" >&2; exit 1; }
lda() { ldapsearch -LLL -o ldif-wrap=no -x -H "$DC_LDAPS_URL" -D "$DC_BIND_DN" -w "$DC_BIND_PASSWORD" "$@"; }
ldr() { ldapsearch -LLL -o ldif-wrap=no -x -H "$DC_LDAPS_URL" -D "$READER_DN" -w "$READER_PASSWORD" "$@"; }
ldm() { ldapmodify -x -H "$DC_LDAPS_URL" -D "$DC_BIND_DN" -w "$DC_BIND_PASSWORD" "$@"; }
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN {printf "%.2f", e - s}'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
label() { if [ $(($1 % 1000)) -eq 0 ]; then echo "$(($1 / 1000))k"; else echo "$1"; fi; }
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---------------------------------------------------------------- fixtures

ou_of() { # N -> OU name, as .ci/bench-ad.sh names them
	local v="BENCH_OU_$1"
	if [ -n "${!v:-}" ]; then echo "${!v}"; elif [ "$1" -eq 10000 ]; then echo Bench; else echo "Bench$(label "$1")"; fi
}
prefix_of() { if [ "$1" = Bench ]; then echo benchuser; else echo "$(echo "$1" | tr 'A-Z' 'a-z')u"; fi; }

# fixture N: N users under OU=<ou>, all enabled, all in CN=<ou>-All.
fixture() {
	local n=$1 ou prefix base group have members tmp
	ou=$(ou_of "$n") prefix=$(prefix_of "$ou")
	base="OU=$ou,$DC_BASE_DN" group="CN=$ou-All,$base"
	have=$(lda -b "$base" -s one -E pr=1000/noprompt "(sAMAccountName=$prefix*)" 1.1 2>/dev/null | grep -c '^dn:' || true)
	if [ "$have" -lt "$n" ]; then
		[ "$have" -eq 0 ] || die "$base holds $have of $n users; remove it or set BENCH_OU_$n"
		log "loading $n users into $base"
		bash "$ROOT/.ci/samba-dc.sh" "$DC_DIR" bulk "$n" "OU=$ou" "$prefix" >&2
	fi
	members=$(lda -b "$base" -s one -E pr=1000/noprompt "(&(objectClass=user)(memberOf=$group))" 1.1 2>/dev/null | grep -c '^dn:' || true)
	if [ "$members" -lt "$n" ]; then
		log "filling $group with $n members"
		tmp=$WORK/group.ldif
		if ! lda -b "$group" -s base '(objectClass=*)' 1.1 >/dev/null 2>&1; then
			printf 'dn: %s\nchangetype: add\nobjectClass: group\nsAMAccountName: %s-All\n\n' "$group" "$ou" >"$tmp"
			ldm -f "$tmp" >/dev/null
		fi
		printf 'dn: %s\nchangetype: modify\nreplace: member\n-\n\n' "$group" >"$tmp"
		ldm -f "$tmp" >/dev/null
		lda -b "$base" -s one -E pr=1000/noprompt "(sAMAccountName=$prefix*)" 1.1 | sed -n 's/^dn: /member: /p' | awk -v n="$n" 'NR <= n' |
			split -l 5000 - "$WORK/members."
		for part in "$WORK"/members.*; do
			{ printf 'dn: %s\nchangetype: modify\nadd: member\n' "$group"; cat "$part"; printf -- '-\n\n'; } >"$tmp"
			ldm -f "$tmp" >/dev/null
			rm -f "$part"
		done
	fi
	# Bulk users without a password are disabled (546), and pandasync never
	# creates disabled people: enable them in place (544), through Samba's
	# own dsdb stack as the bulk load does.
	/usr/bin/python3 - "$DC_DIR/etc/smb.conf" "$base" <<'PY' >&2
import sys, time
import ldb
from samba.samdb import SamDB
from samba.param import LoadParm
from samba.auth import system_session
conf, base = sys.argv[1:3]
lp = LoadParm(); lp.load(conf)
db = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp, options=["batch_mode:1"])
res = db.search(base=base, scope=ldb.SCOPE_ONELEVEL, attrs=["1.1"],
                expression="(&(objectClass=user)(userAccountControl:1.2.840.113556.1.4.803:=2))")
dns = [str(m.dn) for m in res]
for start in range(0, len(dns), 1000):
    db.transaction_start()
    try:
        for dn in dns[start:start + 1000]:
            m = ldb.Message(ldb.Dn(db, dn))
            m["userAccountControl"] = ldb.MessageElement("544", ldb.FLAG_MOD_REPLACE, "userAccountControl")
            db.modify(m)
    except Exception:
        db.transaction_cancel(); raise
    db.transaction_commit()
if dns:
    print(f"enabled {len(dns)} users under {base}", file=sys.stderr)
PY
	GROUP=$group OUBASE=$base PREFIX=$prefix
}

# ---------------------------------------------------------------- emulator and spec

export PANDASYNC_AP_CLIENT_ID=bench-client PANDASYNC_AP_CLIENT_SECRET=bench-secret
export PANDASYNC_AP_EMAIL=admin@bench.test PANDASYNC_AP_PASSWORD=bench-password
export PANDASYNC_READER_UPN=$READER_UPN PANDASYNC_READER_PASSWORD=$READER_PASSWORD

empty_seed() {
	jq -n '{
	  credentials: {client_id: env.PANDASYNC_AP_CLIENT_ID, client_secret: env.PANDASYNC_AP_CLIENT_SECRET,
	                email: env.PANDASYNC_AP_EMAIL, password: env.PANDASYNC_AP_PASSWORD},
	  accounts: [{name: "Bench", modules: [{name: "IT Assets", roles: ["Module Admin", "Collaborator"],
	    collections: [{name: "People", fields: [
	      {name: "AD SID", type: "text", unique: true},
	      {name: "First Name", type: "text"}, {name: "Last Name", type: "text"},
	      {name: "Email", type: "text"}, {name: "Login", type: "text"}, {name: "Display Name", type: "text"},
	      {name: "Integration Status AD", type: "list", options: ["Active", "Inactive", "None"]}]}]}]}],
	  users: [{email: env.PANDASYNC_AP_EMAIL, first_name: "Bench", last_name: "Admin", active: true, ad_sid: "",
	           roles: [{account: "Bench", module: "IT Assets", role: "Module Admin"}]}]}' >"$1"
}

EMU_PID=
start_emulator() { # SEED [FLAGS...] (default -no-rate-limit)
	local seed=$1
	shift
	[ $# -gt 0 ] || set -- -no-rate-limit
	stop_emulator
	EMU_PORT=$(freeport)
	EMU_URL=http://127.0.0.1:$EMU_PORT
	"$BIN" emulator -listen "127.0.0.1:$EMU_PORT" -seed "$seed" "$@" >"$WORK/emulator.log" 2>&1 &
	EMU_PID=$!
	PIDS+=("$EMU_PID")
	for _ in $(seq 1 600); do
		curl -fsS "$EMU_URL/_emulator/stats" >/dev/null 2>&1 && { EMU_STARTED=$(now); return 0; }
		kill -0 "$EMU_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$WORK/emulator.log" >&2
	die "the emulator did not start"
}
stop_emulator() {
	if [ -n "$EMU_PID" ]; then kill "$EMU_PID" 2>/dev/null || true; wait "$EMU_PID" 2>/dev/null || true; EMU_PID=; fi
}
stats() { curl -fsS "$EMU_URL/_emulator/stats"; }
writes_between() { # BEFORE AFTER -> write requests
	jq -n --argjson a "$1" --argjson b "$2" '[$b.requests | to_entries[]
	  | select(.key | test("^(POST|PUT|PATCH|DELETE) ") and (test("search|/session") | not))
	  | .value - ($a.requests[.key] // 0)] | add // 0'
}

write_spec() { # DIR GROUP POLICY-YAML; RATE (default "1000000 1s") and UGROUP (a user mapping's group) from the environment
	local rate
	read -r -a rate <<<"${RATE:-1000000 1s}"
	rm -rf "$1"
	mkdir -p "$1"
	cat >"$1/00-connection.yaml" <<EOF
apiVersion: pandasync.dev/v1alpha1
kind: Connection
metadata: {name: bench}
spec:
  directory:
    urls: ["$DC_LDAPS_URL"]
    baseDN: "$DC_BASE_DN"
    bindDN: {env: PANDASYNC_READER_UPN}
    password: {env: PANDASYNC_READER_PASSWORD}
    caFile: "$DC_CA_CERT"
  assetPanda:
    url: "$EMU_URL"
    clientID: {env: PANDASYNC_AP_CLIENT_ID}
    clientSecret: {env: PANDASYNC_AP_CLIENT_SECRET}
    email: {env: PANDASYNC_AP_EMAIL}
    password: {env: PANDASYNC_AP_PASSWORD}
    rateLimit: {requests: ${rate[0]}, per: ${rate[1]}}
---
apiVersion: pandasync.dev/v1alpha1
kind: CollectionMapping
metadata: {name: people}
spec:
  account: Bench
  module: IT Assets
  collection: People
  group: "$2"
  key: {field: AD SID, attribute: objectSid}
  fields:
    - {field: First Name, attribute: givenName}
    - {field: Last Name, attribute: sn}
    - {field: Email, attribute: mail}
    - {field: Login, attribute: sAMAccountName}
    - {field: Display Name, attribute: displayName}
  status: {field: Integration Status AD, active: Active, inactive: Inactive}
---
apiVersion: pandasync.dev/v1alpha1
kind: SyncPolicy
metadata: {name: bench}
spec:
  limits: {maxDeactivations: -1, maxDeactivationPercent: -1, maxFieldClears: -1, maxFieldClearPercent: -1}
$3
EOF
	if [ -n "${UGROUP:-}" ]; then
		cat >"$1/10-users.yaml" <<EOF
apiVersion: pandasync.dev/v1alpha1
kind: UserMapping
metadata: {name: staff}
spec:
  account: Bench
  module: IT Assets
  role: Collaborator
  group: "$UGROUP"
EOF
	fi
}

# subset_group CN COUNT: CN=CN,<OUBASE> holding the first COUNT users of the
# last fixture (by DN).
subset_group() {
	local group="CN=$1,$OUBASE" have tmp=$WORK/subset.ldif
	have=$(lda -b "$OUBASE" -s one -E pr=1000/noprompt "(&(objectClass=user)(memberOf=$group))" 1.1 2>/dev/null | grep -c '^dn:' || true)
	[ "$have" -eq "$2" ] && return 0
	if ! lda -b "$group" -s base '(objectClass=*)' 1.1 >/dev/null 2>&1; then
		printf 'dn: %s\nchangetype: add\nobjectClass: group\nsAMAccountName: %s\n\n' "$group" "$1" | ldm >/dev/null
	fi
	printf 'dn: %s\nchangetype: modify\nreplace: member\n-\n\n' "$group" | ldm >/dev/null
	lda -b "$OUBASE" -s one -E pr=1000/noprompt "(sAMAccountName=$PREFIX*)" 1.1 | sed -n 's/^dn: //p' | sort | awk -v n="$2" 'NR <= n' |
		split -l 5000 - "$WORK/subset-part."
	for part in "$WORK"/subset-part.*; do
		{ printf 'dn: %s\nchangetype: modify\nadd: member\n' "$group"; sed 's/^/member: /' "$part"; printf -- '-\n\n'; } >"$tmp"
		ldm -f "$tmp" >/dev/null
		rm -f "$part"
	done
}

# timed NAME ENV... -- CMD...: CMD under /usr/bin/time; sets T_WALL T_CPU T_RSS T_RC.
timed() {
	local name=$1 envs=()
	shift
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	T_RC=0
	env "${envs[@]}" /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || T_RC=$?
	T_WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s}' "$WORK/$name.time")
	T_CPU=$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {printf "%.1f", u + s}' "$WORK/$name.time")
	T_RSS=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$WORK/$name.time")
}

# ---------------------------------------------------------------- run (P5-P7)

RUN_PID=
start_run() { # SPECDIR STATEDIR
	ADMIN_PORT=$(freeport)
	ADMIN=http://127.0.0.1:$ADMIN_PORT
	"$BIN" -f "$1" run -listen "127.0.0.1:$ADMIN_PORT" -state-dir "$2" >"$WORK/run.log" 2>&1 &
	RUN_PID=$!
	PIDS+=("$RUN_PID")
	for _ in $(seq 1 300); do curl -fsS "$ADMIN/status" >/dev/null 2>&1 && return 0; sleep 0.1; done
	tail -5 "$WORK/run.log" >&2
	die "pandasync run did not start"
}
stop_run() { if [ -n "$RUN_PID" ]; then kill "$RUN_PID" 2>/dev/null || true; wait "$RUN_PID" 2>/dev/null || true; RUN_PID=; fi; }
status() { curl -fsS "$ADMIN/status"; }
# wait_pass N: waits until the loop has finished N passes and is not in one.
wait_pass() {
	local want=$1 s
	for _ in $(seq 1 3000); do
		s=$(status)
		if [ "$(jq '.passes' <<<"$s")" -ge "$want" ] && [ "$(jq '.current == null' <<<"$s")" = true ]; then
			LAST=$(jq -c '.last_pass' <<<"$s")
			return 0
		fi
		sleep 0.1
	done
	die "no pass $want (run log: $WORK/run.log)"
}
# sync_pass: POST /sync, wait for that pass; prints nothing, sets LAST.
sync_pass() {
	local n
	n=$(status | jq .passes)
	curl -fsS -X POST "$ADMIN/sync" >/dev/null
	wait_pass $((n + 1))
}
# change_users K ROUND: gives the first K users of the fixture a new givenName.
change_users() {
	lda -b "$OUBASE" -s one -E pr=1000/noprompt "(sAMAccountName=$PREFIX*)" 1.1 | sed -n 's/^dn: //p' | sort | awk -v n="$1" 'NR <= n' |
		awk -v r="$2" '{printf "dn: %s\nchangetype: modify\nreplace: givenName\ngivenName: Round %s\n-\n\n", $0, r}' >"$WORK/change.ldif"
	ldm -f "$WORK/change.ldif" >/dev/null
}

# ---------------------------------------------------------------- main

log "work directory $WORK"
BIN=$WORK/pandasync
(cd "$ROOT" && go build -o "$BIN" ./cmd/pandasync)
RESULTS=$WORK/results.md
: >"$RESULTS"
row() { echo "$*" | tee -a "$RESULTS" >&2; }

cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
mem_total=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
samba_version="Samba $(samba --version 2>/dev/null | sed "s/^Version //")"

P1=() P4=() P5=() P6=() P7=()
for N in "${SIZES[@]}"; do
	L=$(label "$N")
	fixture "$N"
	FILTER="(&(objectClass=user)(memberOf=$GROUP))"

	seed=$WORK/seed-$N.json
	if [ ! -f "$seed" ]; then
		log "N=$N: steady state: apply into an empty People collection"
		empty_seed "$WORK/empty.json"
		start_emulator "$WORK/empty.json"
		write_spec "$WORK/spec-$L" "$GROUP" "  changeTracking: {method: \"off\"}"
		timed "initial-$L" -- "$BIN" -f "$WORK/spec-$L" apply -auto-approve
		[ "$T_RC" -eq 0 ] || { tail -5 "$WORK/initial-$L.err" >&2; die "the initial apply failed ($T_RC)"; }
		curl -fsS "$EMU_URL/_emulator/state" | jq '.credentials = {client_id: env.PANDASYNC_AP_CLIENT_ID,
		  client_secret: env.PANDASYNC_AP_CLIENT_SECRET, email: env.PANDASYNC_AP_EMAIL, password: env.PANDASYNC_AP_PASSWORD}' >"$seed"
	fi
	start_emulator "$seed"
	write_spec "$WORK/spec-$L" "$GROUP" "  changeTracking: {method: \"off\"}"

	runs=${RUNS:-5}
	[ "$N" -ge 100000 ] && runs=${RUNS:-3}
	log "N=$N: full plan and ldapsearch, $runs runs each, interleaved"
	ours=() raw=() rss=() cpu=() lim_rss=() lim_wall=() lim_cpu=()
	for i in $(seq 1 "$runs"); do
		timed "plan-$L-$i" -- "$BIN" -f "$WORK/spec-$L" plan -json -detailed-exitcode
		[ "$T_RC" -eq 0 ] || { tail -5 "$WORK/plan-$L-$i.err" >&2; die "the steady-state plan exited $T_RC, want 0 (in sync)"; }
		ours+=("$T_WALL") rss+=("$T_RSS") cpu+=("$T_CPU")
		t0=$(now)
		# shellcheck disable=SC2086
		count=$(ldr -b "$DC_BASE_DN" -E pr=1000/noprompt "$FILTER" $ATTRS | grep -c '^dn:')
		raw+=("$(since "$t0")")
		if [ -n "$MEMLIMIT" ]; then
			timed "plan-lim-$L-$i" "GOMEMLIMIT=$MEMLIMIT" -- "$BIN" -f "$WORK/spec-$L" plan -json -detailed-exitcode
			[ "$T_RC" -eq 0 ] || die "the steady-state plan under GOMEMLIMIT exited $T_RC"
			lim_rss+=("$T_RSS") lim_wall+=("$T_WALL") lim_cpu+=("$T_CPU")
		fi
	done
	[ "$count" -eq "$N" ] || die "ldapsearch returned $count entries, want $N"
	o=$(printf '%s\n' "${ours[@]}" | median) l=$(printf '%s\n' "${raw[@]}" | median)
	P1+=("| P1 | full plan vs ldapsearch, $L | $(awk -v o="$o" -v l="$l" 'BEGIN {printf "%.2fx (%.2f s vs %.2f s)", o / l, o, l}') | <= 1.25x | runs: plan ${ours[*]} s; ldapsearch ${raw[*]} s |")
	maxrss=$(printf '%s\n' "${rss[@]}" | sort -g | tail -1)
	goal=150
	[ "$N" -le 10000 ] && goal=50
	P4+=("| P4 | peak RSS of a full plan, $L | $maxrss MB (CPU $(printf '%s\n' "${cpu[@]}" | median) s) | <= $goal MB | max of $runs runs, default GOGC, no GOMEMLIMIT |")
	if [ -n "$MEMLIMIT" ]; then
		P4+=("| P4 | the same with GOMEMLIMIT=$MEMLIMIT, $L | $(printf '%s\n' "${lim_rss[@]}" | sort -g | tail -1) MB (CPU $(printf '%s\n' "${lim_cpu[@]}" | median) s, wall $(printf '%s\n' "${lim_wall[@]}" | median) s) | <= $goal MB | |")
	fi

	# pandasync run with change tracking. The records were last written when
	# the emulator loaded its seed: the change probe's one-minute margin must
	# have passed, as it has in any steady state.
	while [ "$(awk -v s="$EMU_STARTED" -v e="$(now)" 'BEGIN {print (e - s < 70)}')" = 1 ]; do sleep 1; done
	log "N=$N: pandasync run, passes on demand (POST /sync)"
	write_spec "$WORK/run-$L" "$GROUP" "  schedule: {every: 24h}
  runAtStart: true
  changeTracking: {method: usn, every: 24h, fullEvery: 24h}"
	rm -rf "$WORK/state-$L"
	start_run "$WORK/run-$L" "$WORK/state-$L"
	wait_pass 1
	[ "$(jq -r '.outcome' <<<"$LAST")" = no_changes ] || die "first run pass: $(jq -c '{outcome, error, read}' <<<"$LAST")"
	full_wall=$(jq '.duration_seconds' <<<"$LAST")
	# P5: nothing changed.
	walls=() searches=() w5=()
	for _ in 1 2 3; do
		b=$(stats)
		sync_pass
		a=$(stats)
		[ "$(jq -r '.read.full' <<<"$LAST")" = false ] || die "P5 pass read everything: $(jq -c .read <<<"$LAST")"
		walls+=("$(jq '.duration_seconds' <<<"$LAST")") searches+=("$(jq '.read.ldap_searches' <<<"$LAST")")
		w5+=("$(writes_between "$b" "$a")")
	done
	P5+=("| P5 | run pass with nothing changed, $L | writes ${w5[*]}; LDAP searches ${searches[*]}; wall $(printf '%s\n' "${walls[@]}" | median | awk '{printf "%.3f", $1}') s | 0; <= 3; <= 1 s | first (full) pass $(printf '%.1f' "$full_wall") s; API requests $(jq '.read.api_requests' <<<"$LAST") (token, one probe) |")
	# P6: k changed.
	round=0
	for k in $KS; do
		[ "$k" -le "$N" ] || continue
		round=$((round + 1))
		change_users "$k" "$(date +%s)-$round"
		b=$(stats)
		sync_pass
		a=$(stats)
		applied=$(jq '.counts.applied' <<<"$LAST")
		entries=$(jq '.read.ldap_entries - 2' <<<"$LAST")
		P6+=("| P6 | $k changed, $L | entries $entries; writes $applied objects in $(writes_between "$b" "$a") requests; pass $(jq '.duration_seconds' <<<"$LAST" | awk '{printf "%.2f", $1}') s | <= $k; = $k; linear in k | read $(jq -c '{full: .read.full, searches: .read.ldap_searches}' <<<"$LAST") |")
		sync_pass # folds our writes in (its records come back from the change probe)
	done
	stop_run

	# P7: the schedule polls every $POLL; a user is disabled in AD.
	log "N=$N: pandasync run polling every $POLL; disabling one user"
	write_spec "$WORK/run-$L" "$GROUP" "  schedule: {every: 24h}
  runAtStart: true
  changeTracking: {method: usn, every: $POLL, fullEvery: 24h}"
	start_run "$WORK/run-$L" "$WORK/state-$L"
	wait_pass 1
	victim=$(lda -b "$OUBASE" -s one -E pr=1000/noprompt "(sAMAccountName=$PREFIX*)" 1.1 | sed -n 's/^dn: //p' | sort | tail -1)
	sid=$(python3 - "$victim" <<'PY'
import base64, struct, subprocess, sys, os
out = subprocess.run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", os.environ["DC_LDAPS_URL"], "-D", os.environ["DC_BIND_DN"],
                      "-w", os.environ["DC_BIND_PASSWORD"], "-b", sys.argv[1], "-s", "base", "(objectClass=*)", "objectSid"],
                     capture_output=True, text=True, check=True).stdout
b = base64.b64decode([l.split(":: ", 1)[1] for l in out.splitlines() if l.startswith("objectSid::")][0])
subs = [struct.unpack("<I", b[8 + 4 * i:12 + 4 * i])[0] for i in range(b[1])]
print("S-%d-%d-%s" % (b[0], int.from_bytes(b[2:8], "big"), "-".join(map(str, subs))))
PY
)
	sleep 5 # not right before a poll
	t0=$(now)
	printf 'dn: %s\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n-\n\n' "$victim" | ldm >/dev/null
	t7=
	for _ in $(seq 1 1800); do
		if [ -f "$WORK/state-$L/audit.jsonl" ] && jq -e --arg k "$sid" 'select(.key == $k and .action == "deactivate" and .result == "applied")' "$WORK/state-$L/audit.jsonl" >/dev/null 2>&1; then
			t7=$(since "$t0")
			break
		fi
		sleep 0.1
	done
	[ -n "$t7" ] || die "P7: the record of $victim was not set Inactive"
	state=$(curl -fsS "$EMU_URL/_emulator/state" | jq -r --arg k "$sid" '.accounts[].modules[].collections[] | select(.name == "People") | .records[] | select(.["AD SID"] == $k) | .["Integration Status AD"]')
	[ "$state" = Inactive ] || die "P7: the emulator holds $victim as $state"
	P7+=("| P7 | disabled in AD until Inactive in Asset Panda, $L, poll $POLL | $t7 s | <= 60 s | the emulator confirms Inactive |")
	stop_run
	printf 'dn: %s\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 544\n-\n\n' "$victim" | ldm >/dev/null
	rm -f "$seed" # the state has moved on; the next run makes it again
	stop_emulator
done

TP=()
if [ -n "${THROUGHPUT:-}" ]; then
	TP_LIMIT=${TP_LIMIT:-40} TP_PER=${TP_PER:-10s} TP_RECORDS=${TP_RECORDS:-2000} TP_USERS=${TP_USERS:-300}
	fixture 10000
	subset_group Bench-TP-Records "$TP_RECORDS"
	rgroup="CN=Bench-TP-Records,$OUBASE"
	fixture 1000
	subset_group Bench-TP-Users "$TP_USERS"
	log "throughput: $TP_RECORDS records + $TP_USERS users under $TP_LIMIT requests per $TP_PER"
	empty_seed "$WORK/empty.json"
	start_emulator "$WORK/empty.json" -rate-limit "$TP_LIMIT" -rate-per "$TP_PER"
	RATE="$TP_LIMIT $TP_PER" UGROUP="CN=Bench-TP-Users,$OUBASE" write_spec "$WORK/spec-tp" "$rgroup" "  changeTracking: {method: \"off\"}"
	b=$(stats)
	timed throughput -- "$BIN" -f "$WORK/spec-tp" apply -auto-approve
	[ "$T_RC" -eq 0 ] || { tail -5 "$WORK/throughput.err" >&2; die "the throughput apply failed ($T_RC)"; }
	a=$(stats)
	total=$(jq -n --argjson a "$b" --argjson b "$a" '[$b.requests | to_entries[] | .value - ($a.requests[.key] // 0)] | add // 0')
	throttled=$(jq -n --argjson a "$b" --argjson b "$a" '($b.status["429"] // 0) - ($a.status["429"] // 0)')
	per_s=$(python3 -c "import re; m=re.fullmatch(r'(\d+(?:\.\d+)?)(ms|s|m)', '$TP_PER'); print(float(m[1]) * {'ms': 0.001, 's': 1, 'm': 60}[m[2]])")
	# In T seconds a sliding window of L per P admits at most L * (floor(T/P) + 1).
	TP+=("| P8 | write throughput under $TP_LIMIT requests per $TP_PER ($TP_RECORDS records, $TP_USERS users) | $(awk -v n="$total" -v t="$throttled" -v w="$T_WALL" -v l="$TP_LIMIT" -v p="$per_s" 'BEGIN {printf "%.1f%% of what the limit admits; %.1f%% answered 429", 100 * (n - t) / (l * (int(w / p) + 1)), (n > 0 ? 100 * t / n : 0)}') | >= 90%; <= 2% | $total requests in $T_WALL s |")
	stop_emulator
fi

{
	echo
	echo "Machine: $(nproc) cores ($cpu_model), $mem_total; load before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg); $samba_version on the same machine; $(go version | cut -d' ' -f3-)"
	echo
	echo "| # | what | measured | goal | notes |"
	echo "|---|---|---|---|---|"
	printf '%s\n' "${P1[@]}" "${P4[@]}" "${P5[@]}" "${P6[@]}" "${P7[@]}" "${TP[@]}"
} | tee -a "$RESULTS"
