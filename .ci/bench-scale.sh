#!/usr/bin/env bash
# bench-scale.sh - measure pandasync at scale against the Samba DC and the
# Asset Panda emulator (DESIGN §5 bars, reliability.md §10 P1-P5, P8, P11, P12).
#
# For each N (default 1000 10000 100000) it
#   1. makes sure OU=BenchN holds N *enabled* users and CN=BenchN-All holds them
#      (loaded with `.ci/samba-dc.sh DIR bulk`, then enabled in place: bulk users
#      without a password are disabled, and pandasync never creates disabled people);
#   2. times pandasync's AD reader (BenchmarkReadSamba, as .ci/bench-ad.sh does)
#      against `ldapsearch -E pr=1000/noprompt` with the same base, filter and
#      attributes, interleaved, median of RUNS;
#   3. starts the emulator with an empty People collection (-no-rate-limit) and runs
#      `apply -auto-approve` (the initial load): wall, max RSS, requests, writes;
#   4. runs `plan -json -detailed-exitcode` against the loaded emulator PLAN_RUNS
#      times (steady state): wall, max RSS, requests, writes (must be 0);
#   5. restarts the emulator from its own state dump with K records edited and
#      runs `apply -auto-approve` (K updates): writes and requests per change.
# Then a throughput run: the emulator limited to TP_LIMIT requests per TP_PER
# (default 40 per 10s), the client configured with the same limit, and an
# initial load of TP_RECORDS records and TP_USERS invited users; it reports the
# achieved request rate against the limit and the share answered 429.
#
# Usage: .ci/bench-scale.sh [N...]
# Knobs: DC_ENV (default /tmp/ad/dc.env), RUNS=5 (AD read runs; 3 at N >= 100000),
#        PLAN_RUNS=3, SKIP_THROUGHPUT=1, ONLY_THROUGHPUT=1, TP_LIMIT=40 TP_PER=10s
#        TP_RECORDS=2000 TP_USERS=300, KEEP=1 (keep the work directory), WORK=DIR.
# Everything listens on 127.0.0.1 only. Needs ldap-utils, jq, python3, /usr/bin/time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DC_ENV=${DC_ENV:-${DC_DIR:+$DC_DIR/dc.env}}
DC_ENV=${DC_ENV:-/tmp/ad/dc.env}
[ -f "$DC_ENV" ] || { echo "bench-scale: no $DC_ENV; start the DC first (.ci/run)" >&2; exit 1; }
set -a
# shellcheck disable=SC1090
. "$DC_ENV"
set +a
export LDAPTLS_CACERT=$DC_CA_CERT
for tool in ldapsearch ldapmodify jq python3 curl /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench-scale: $tool is needed" >&2; exit 1; }
done

SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000 10000 100000)
PLAN_RUNS=${PLAN_RUNS:-3}
TP_LIMIT=${TP_LIMIT:-40}
TP_PER=${TP_PER:-10s}
TP_RECORDS=${TP_RECORDS:-2000}
TP_USERS=${TP_USERS:-300}
ATTRS="objectSid objectGUID userAccountControl sAMAccountName userPrincipalName accountExpires mail givenName sn"
SAMBA_PY=/usr/bin/python3 # Samba's python bindings live in the system python

WORK=${WORK:-$(mktemp -d /tmp/bench-scale.XXXXXX)}
mkdir -p "$WORK"
EMU_PID=
cleanup() {
	stop_emulator
	if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "bench-scale: kept $WORK" >&2; fi
}
trap cleanup EXIT

log() { echo "[bench-scale] $*" >&2; }
lds() { ldapsearch -LLL -o ldif-wrap=no -x -H "$DC_LDAPS_URL" -D "$DC_BIND_DN" -w "$DC_BIND_PASSWORD" "$@"; }
ldm() { ldapmodify -x -H "$DC_LDAPS_URL" -D "$DC_BIND_DN" -w "$DC_BIND_PASSWORD" "$@"; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
label() { # 1000 -> 1k, 100000 -> 100k
	if [ $(($1 % 1000)) -eq 0 ]; then echo "$(($1 / 1000))k"; else echo "$1"; fi
}

# ---------------------------------------------------------------- fixtures

# count_users OU PREFIX: users named PREFIX* directly under OU.
count_users() {
	lds -b "$1,$DC_BASE_DN" -s one -E pr=1000/noprompt "(&(objectClass=user)(sAMAccountName=$2*))" 1.1 2>/dev/null | grep -c '^dn:' || true
}

# enable_users OU PREFIX: clear ACCOUNTDISABLE on every PREFIX* user under OU
# (userAccountControl 546 -> 544: a normal account that needs no password).
# Goes through Samba's dsdb stack in-process, like samba-dc.sh bulk does.
enable_users() {
	"$SAMBA_PY" - "$DC_DIR/etc/smb.conf" "$1" "$2" <<'PY'
import sys, time
import ldb
from samba.samdb import SamDB
from samba.param import LoadParm
from samba.auth import system_session
conf, ou, prefix = sys.argv[1:4]
lp = LoadParm(); lp.load(conf)
db = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp, options=["batch_mode:1"])
base = f"{ou},{db.domain_dn()}"
res = db.search(base=base, scope=ldb.SCOPE_ONELEVEL, attrs=["userAccountControl"],
                expression=f"(&(objectClass=user)(sAMAccountName={ldb.binary_encode(prefix)}*)(userAccountControl:1.2.840.113556.1.4.803:=2))")
dns = [str(m.dn) for m in res]
t0 = time.time()
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
print(f"enabled {len(dns)} users under {base} in {time.time() - t0:.1f}s", file=sys.stderr)
PY
}

# ensure_users N OU PREFIX: N enabled users PREFIX00000.. under OU.
ensure_users() {
	local n=$1 ou=$2 prefix=$3 have
	have=$(count_users "$ou" "$prefix")
	if [ "$have" -eq 0 ]; then
		log "loading $n users into $ou"
		bash "$ROOT/.ci/samba-dc.sh" "$DC_DIR" bulk "$n" "$ou" "$prefix"
	elif [ "$have" -lt "$n" ]; then
		echo "bench-scale: $ou holds $have of $n users; remove it or use another N" >&2
		exit 1
	fi
	enable_users "$ou" "$prefix"
}

# ensure_group CN OU PREFIX COUNT: group CN=CN,OU holding the first COUNT
# PREFIX* users of OU (by DN), added in modifies of 5,000 values.
ensure_group() {
	local cn=$1 ou=$2 prefix=$3 count=$4 group have tmp
	group="CN=$cn,$ou,$DC_BASE_DN"
	have=$(lds -b "$ou,$DC_BASE_DN" -s one -E pr=1000/noprompt "(&(objectClass=user)(memberOf=$group))" 1.1 2>/dev/null | grep -c '^dn:' || true)
	[ "$have" -eq "$count" ] && return 0
	log "filling $group with $count members (has $have)"
	tmp=$WORK/group.ldif
	if ! lds -b "$group" -s base '(objectClass=*)' 1.1 >/dev/null 2>&1; then
		printf 'dn: %s\nchangetype: add\nobjectClass: group\nsAMAccountName: %s\n\n' "$group" "$cn" >"$tmp"
		ldm -f "$tmp" >/dev/null
	fi
	printf 'dn: %s\nchangetype: modify\nreplace: member\n-\n\n' "$group" >"$tmp"
	ldm -f "$tmp" >/dev/null
	lds -b "$ou,$DC_BASE_DN" -s one -E pr=1000/noprompt "(&(objectClass=user)(sAMAccountName=$prefix*))" 1.1 |
		sed -n 's/^dn: //p' | sort | awk -v n="$count" 'NR <= n' | split -l 5000 - "$WORK/members."
	for part in "$WORK"/members.*; do
		{
			printf 'dn: %s\nchangetype: modify\nadd: member\n' "$group"
			sed 's/^/member: /' "$part"
			printf -- '-\n\n'
		} >"$tmp"
		ldm -f "$tmp" >/dev/null
		rm -f "$part"
	done
}

# ---------------------------------------------------------------- AD read

ADTEST=$WORK/ad.test
BIN=$WORK/pandasync
# ad_read GROUP RUNS: prints "ours raw ratio entries" (seconds, medians).
ad_read() {
	local group=$1 runs=$2 out ns t0 count=0 o l
	local ours=() raw=()
	for _ in $(seq 1 "$runs"); do
		out=$(PANDASYNC_BENCH_GROUP=$group "$ADTEST" -test.run '^$' -test.bench '^BenchmarkReadSamba$' -test.benchtime 1x -test.count 1)
		ns=$(echo "$out" | awk '/^BenchmarkReadSamba/ {for (i = 1; i <= NF; i++) if ($(i+1) == "ns/op") print $i}')
		[ -n "$ns" ] || { echo "$out" >&2; exit 1; }
		echo "$out" | grep '^BenchmarkReadSamba' >>"$WORK/ad-read.log"
		ours+=("$(awk -v n="$ns" 'BEGIN {printf "%.3f", n / 1e9}')")
		t0=$(now)
		# shellcheck disable=SC2086
		count=$(lds -b "$DC_BASE_DN" -E pr=1000/noprompt "(&(objectClass=user)(memberOf=$group))" $ATTRS | grep -c '^dn:')
		raw+=("$(awk -v s="$t0" -v e="$(now)" 'BEGIN {printf "%.3f", e - s}')")
	done
	o=$(printf '%s\n' "${ours[@]}" | median)
	l=$(printf '%s\n' "${raw[@]}" | median)
	echo "ad-read $group: pandasync ${ours[*]} / ldapsearch ${raw[*]}" >>"$WORK/ad-read.log"
	awk -v o="$o" -v l="$l" -v c="$count" 'BEGIN {printf "%.2f %.2f %.2f %d\n", o, l, o / l, c}'
}

# ---------------------------------------------------------------- emulator

EMU_PORT=${EMU_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
EMU_URL=http://127.0.0.1:$EMU_PORT
export PANDASYNC_AP_CLIENT_ID=bench-client PANDASYNC_AP_CLIENT_SECRET=bench-secret
export PANDASYNC_AP_EMAIL=admin@bench.test PANDASYNC_AP_PASSWORD=bench-password

# empty_seed FILE: account Bench, module IT Assets, an empty People collection.
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

# start_emulator SEED FLAGS...
start_emulator() {
	local seed=$1
	shift
	"$BIN" emulator -listen "127.0.0.1:$EMU_PORT" -seed "$seed" "$@" >"$WORK/emulator.log" 2>&1 &
	EMU_PID=$!
	for _ in $(seq 1 300); do
		curl -fsS "$EMU_URL/_emulator/stats" >/dev/null 2>&1 && return 0
		kill -0 "$EMU_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$WORK/emulator.log" >&2
	echo "bench-scale: the emulator did not start" >&2
	exit 1
}

stop_emulator() {
	if [ -n "$EMU_PID" ]; then
		kill "$EMU_PID" 2>/dev/null || true
		wait "$EMU_PID" 2>/dev/null || true
		EMU_PID=
	fi
}

stats() { curl -fsS "$EMU_URL/_emulator/stats"; }

# stats_delta BEFORE AFTER: {total, writes, reads, token, throttled, requests:{...}} of AFTER-BEFORE.
stats_delta() {
	jq -n --argjson a "$1" --argjson b "$2" '
	  def d(x; y): reduce (y | keys[]) as $k ({}; .[$k] = (y[$k] - (x[$k] // 0))) | with_entries(select(.value != 0));
	  d($a.requests; $b.requests) as $r | d($a.status; $b.status) as $s |
	  def w: test("^(POST|PUT|PATCH|DELETE) ") and (test("/search/objects$|/objects/search$|/session") | not);
	  {total: ([$r[]] | add // 0),
	   writes: ([$r | to_entries[] | select(.key | w) | .value] | add // 0),
	   searches: ([$r | to_entries[] | select(.key | test("search")) | .value] | add // 0),
	   token: ([$r | to_entries[] | select(.key | test("/session")) | .value] | add // 0),
	   throttled: ($s["429"] // 0), requests: $r, status: $s}
	  | .reads = (.total - .writes - .token)'
}

# ---------------------------------------------------------------- spec

# write_spec DIR GROUP RATE_REQUESTS RATE_PER [USERGROUP]
write_spec() {
	local dir=$1 group=$2 req=$3 per=$4 ugroup=${5:-}
	rm -rf "$dir"
	mkdir -p "$dir"
	cat >"$dir/00-connection.yaml" <<EOF
apiVersion: pandasync.dev/v1alpha1
kind: Connection
metadata: {name: bench}
spec:
  directory:
    urls: ["$DC_LDAPS_URL"]
    baseDN: "$DC_BASE_DN"
    bindDN: {env: DC_BIND_UPN}
    password: {env: DC_BIND_PASSWORD}
    caFile: "$DC_CA_CERT"
  assetPanda:
    url: "$EMU_URL"
    clientID: {env: PANDASYNC_AP_CLIENT_ID}
    clientSecret: {env: PANDASYNC_AP_CLIENT_SECRET}
    email: {env: PANDASYNC_AP_EMAIL}
    password: {env: PANDASYNC_AP_PASSWORD}
    rateLimit: {requests: $req, per: $per}
EOF
	cat >"$dir/20-people.yaml" <<EOF
apiVersion: pandasync.dev/v1alpha1
kind: CollectionMapping
metadata: {name: people}
spec:
  account: Bench
  module: IT Assets
  collection: People
  group: "$group"
  key: {field: AD SID, attribute: objectSid}
  fields:
    - {field: First Name, attribute: givenName}
    - {field: Last Name, attribute: sn}
    - {field: Email, attribute: mail}
    - {field: Login, attribute: sAMAccountName}
    - {field: Display Name, attribute: displayName}
  status: {field: Integration Status AD, active: Active, inactive: Inactive}
EOF
	if [ -n "$ugroup" ]; then
		cat >"$dir/10-users.yaml" <<EOF
apiVersion: pandasync.dev/v1alpha1
kind: UserMapping
metadata: {name: staff}
spec:
  account: Bench
  module: IT Assets
  role: Collaborator
  group: "$ugroup"
EOF
	fi
}

# ---------------------------------------------------------------- timed runs

# timed NAME CMD...: runs CMD under /usr/bin/time -v with stdout/stderr to
# $WORK/NAME.{out,err}; sets T_WALL (s), T_CPU (s), T_RSS (MB), T_RC, T_STATS
# (emulator request delta as JSON) and T_LDAP (the reader's debug summary).
timed() {
	local name=$1 before after
	shift
	before=$(stats)
	T_RC=0
	/usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || T_RC=$?
	after=$(stats)
	T_STATS=$(stats_delta "$before" "$after")
	T_WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s}' "$WORK/$name.time")
	T_CPU=$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {printf "%.2f", u + s}' "$WORK/$name.time")
	T_RSS=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$WORK/$name.time")
	T_LDAP=$(grep -h '"msg":"directory read"' "$WORK/$name.err" | tail -1 | jq -r '"searches=\(.searches) pages=\(.pages) entries=\(.entries) ranged=\(.rangeRequests)"' 2>/dev/null || true)
}

records_in_state() {
	curl -fsS "$EMU_URL/_emulator/state" | jq '[.accounts[].modules[].collections[] | select(.name == "People") | .records[]] | length'
}

# ---------------------------------------------------------------- main

log "work directory $WORK, emulator on $EMU_URL"
log "building pandasync and the AD reader benchmark"
(cd "$ROOT" && go build -o "$BIN" ./cmd/pandasync && go test -c -o "$ADTEST" ./providers/activedirectory/)
PS="$BIN -log-level debug" # split into words on purpose where it is used

RESULTS=$WORK/results.txt
: >"$RESULTS"
result() { echo "$*" | tee -a "$RESULTS"; }

if [ -z "${ONLY_THROUGHPUT:-}" ]; then
	for N in "${SIZES[@]}"; do
		L=$(label "$N")
		OU="OU=Bench$L" PREFIX="bench$L" GROUP="CN=Bench$L-All,OU=Bench$L,$DC_BASE_DN"
		ensure_users "$N" "$OU" "$PREFIX"
		ensure_group "Bench$L-All" "$OU" "$PREFIX" "$N"

		runs=${RUNS:-5}
		[ "$N" -ge 100000 ] && runs=${RUNS:-3}
		log "N=$N: AD read, $runs runs each"
		read -r ours raw ratio entries <<<"$(ad_read "$GROUP" "$runs")"
		result "N=$N ad-read: pandasync ${ours}s ldapsearch ${raw}s ratio $ratio entries $entries (bar <= 1.25)"

		log "N=$N: initial load (apply -auto-approve into an empty collection)"
		empty_seed "$WORK/empty.json"
		start_emulator "$WORK/empty.json" -no-rate-limit
		write_spec "$WORK/spec" "$GROUP" 1000000 1s
		timed "apply-$L" $PS -f "$WORK/spec" apply -auto-approve
		[ "$T_RC" -eq 0 ] || { tail -5 "$WORK/apply-$L.err" >&2; echo "bench-scale: apply failed ($T_RC)" >&2; exit 1; }
		created=$(records_in_state)
		result "N=$N initial-load: wall ${T_WALL}s cpu ${T_CPU}s maxrss ${T_RSS}MB created $created" \
			"requests $(jq .total <<<"$T_STATS") writes $(jq .writes <<<"$T_STATS") reads $(jq .reads <<<"$T_STATS")" \
			"writes/created $(jq -r --argjson c "$created" 'if $c > 0 then .writes / $c * 1000 | round / 1000 else "n/a" end' <<<"$T_STATS")" \
			"requests/created $(jq -r --argjson c "$created" 'if $c > 0 then .total / $c * 1000 | round / 1000 else "n/a" end' <<<"$T_STATS")"
		echo "$T_STATS" | jq -c .requests >>"$WORK/requests.log"

		log "N=$N: steady state (plan -json, $PLAN_RUNS runs)"
		walls=() rss=0 cpus=()
		for i in $(seq 1 "$PLAN_RUNS"); do
			timed "plan-$L-$i" $PS -f "$WORK/spec" plan -json -detailed-exitcode
			[ "$T_RC" -eq 0 ] || { tail -5 "$WORK/plan-$L-$i.err" >&2; echo "bench-scale: steady-state plan exited $T_RC (want 0: no changes)" >&2; exit 1; }
			walls+=("$T_WALL") cpus+=("$T_CPU")
			rss=$(awk -v a="$rss" -v b="$T_RSS" 'BEGIN {print (b > a ? b : a)}')
		done
		result "N=$N steady-plan: wall median $(printf '%s\n' "${walls[@]}" | median)s (runs ${walls[*]}) cpu median $(printf '%s\n' "${cpus[@]}" | median)s" \
			"maxrss ${rss}MB requests $(jq .total <<<"$T_STATS") searches $(jq .searches <<<"$T_STATS") writes $(jq .writes <<<"$T_STATS")" \
			"summary $(jq -c .summary "$WORK/plan-$L-$PLAN_RUNS.out") ldap: $T_LDAP"
		echo "$T_STATS" | jq -c .requests >>"$WORK/requests.log"

		K=$((N / 10))
		[ "$K" -gt 1000 ] && K=1000
		log "N=$N: $K changed records (emulator restarted from its state with $K First Names edited)"
		curl -fsS "$EMU_URL/_emulator/state" |
			jq --argjson k "$K" '.credentials = {client_id: env.PANDASYNC_AP_CLIENT_ID, client_secret: env.PANDASYNC_AP_CLIENT_SECRET,
			                                     email: env.PANDASYNC_AP_EMAIL, password: env.PANDASYNC_AP_PASSWORD}
			  | .accounts[0].modules[0].collections[0].records |= (to_entries | map(if .key < $k then .value["First Name"] = "Edited" else . end) | map(.value))' \
				>"$WORK/changed.json"
		stop_emulator
		start_emulator "$WORK/changed.json" -no-rate-limit
		timed "update-$L" $PS -f "$WORK/spec" apply -auto-approve
		[ "$T_RC" -eq 0 ] || { tail -5 "$WORK/update-$L.err" >&2; echo "bench-scale: update apply failed ($T_RC)" >&2; exit 1; }
		result "N=$N update-$K: wall ${T_WALL}s maxrss ${T_RSS}MB requests $(jq .total <<<"$T_STATS") writes $(jq .writes <<<"$T_STATS")" \
			"writes/changed $(jq --argjson k "$K" '.writes / $k * 1000 | round / 1000' <<<"$T_STATS")" \
			"requests/changed $(jq --argjson k "$K" '.total / $k * 1000 | round / 1000' <<<"$T_STATS")"
		echo "$T_STATS" | jq -c .requests >>"$WORK/requests.log"
		stop_emulator
	done
fi

if [ -z "${SKIP_THROUGHPUT:-}" ]; then
	# Records from the 10k set, users from the 1k set.
	ensure_users 10000 OU=Bench10k bench10k
	ensure_users 1000 OU=Bench1k bench1k
	ensure_group "Bench-TP-Records" OU=Bench10k bench10k "$TP_RECORDS"
	ensure_group "Bench-TP-Users" OU=Bench1k bench1k "$TP_USERS"
	log "throughput: $TP_RECORDS records + $TP_USERS users under -rate-limit $TP_LIMIT -rate-per $TP_PER"
	empty_seed "$WORK/empty.json"
	start_emulator "$WORK/empty.json" -rate-limit "$TP_LIMIT" -rate-per "$TP_PER"
	write_spec "$WORK/spec" "CN=Bench-TP-Records,OU=Bench10k,$DC_BASE_DN" "$TP_LIMIT" "$TP_PER" "CN=Bench-TP-Users,OU=Bench1k,$DC_BASE_DN"
	timed "throughput" $PS -f "$WORK/spec" apply -auto-approve
	[ "$T_RC" -eq 0 ] || { tail -5 "$WORK/throughput.err" >&2; echo "bench-scale: throughput apply failed ($T_RC)" >&2; exit 1; }
	state=$(curl -fsS "$EMU_URL/_emulator/state")
	recs=$(jq '[.accounts[].modules[].collections[] | select(.name == "People") | .records[]] | length' <<<"$state")
	users=$(jq '[.users[] | select(.ad_sid != "")] | length' <<<"$state")
	per_s=$(python3 -c "import re,sys; s='$TP_PER'; m=re.fullmatch(r'(\d+(?:\.\d+)?)(ms|s|m)', s); print(float(m[1]) * {'ms': 0.001, 's': 1, 'm': 60}[m[2]])")
	echo "$T_STATS" | jq -c . >>"$WORK/requests.log"
	# In T seconds a sliding window of L per P admits at most L * (floor(T/P) + 1)
	# requests (the first window is a burst); achieved/admissible is the throughput.
	result "throughput: wall ${T_WALL}s requests $(jq .total <<<"$T_STATS") (429: $(jq .throttled <<<"$T_STATS")) writes $(jq .writes <<<"$T_STATS")" \
		"created records $recs users $users;" \
		"rate $(jq --argjson w "$T_WALL" '.total / $w * 100 | round / 100' <<<"$T_STATS") req/s vs limit $(awk -v l="$TP_LIMIT" -v p="$per_s" 'BEGIN {printf "%.2f", l / p}') req/s;" \
		"answered (non-429) / admissible in ${T_WALL}s = $(jq --argjson w "$T_WALL" --argjson l "$TP_LIMIT" --argjson p "$per_s" '(.total - .throttled) / ($l * (($w / $p) | floor) + $l) * 1000 | round / 10' <<<"$T_STATS")% (bar >= 90%);" \
		"429 share $(jq 'if .total > 0 then .throttled / .total * 1000 | round / 10 else 0 end' <<<"$T_STATS")% (bar <= 2%)"
	# The same from the client's own request log: the span from its first to its last API request.
	python3 - "$WORK/throughput.err" "$TP_LIMIT" "$per_s" <<'PY' | tee -a "$RESULTS"
import json, sys
from datetime import datetime
path, limit, per = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ts, throttled = [], 0
for line in open(path):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("msg") == "asset panda request":
        ts.append(datetime.fromisoformat(e["time"]).timestamp())
        throttled += e.get("status") == 429
if len(ts) > 1:
    span = ts[-1] - ts[0]
    admissible = limit * (int(span // per) + 1)
    print(f"throughput (client log): {len(ts)} requests ({throttled} answered 429) in {span:.1f}s from first to last = "
          f"{len(ts) / span:.2f} req/s; answered/admissible {100 * (len(ts) - throttled) / admissible:.1f}% (bar >= 90%)")
PY
	stop_emulator
fi

echo
echo "== results (details in $WORK when KEEP=1)"
cat "$RESULTS"
