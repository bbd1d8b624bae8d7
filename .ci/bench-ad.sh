#!/usr/bin/env bash
# bench-ad.sh - read N users of one AD group from the Samba DC with pandasync's
# reader and with `ldapsearch -E pr=1000/noprompt` (same base, filter and
# attributes), in the same run, and print both times and their ratio.
#
# Usage: .ci/bench-ad.sh [N]          (default N=10000)
# Needs a running Samba DC described by dc.env (DC_ENV, default /tmp/ad/dc.env
# or $DC_DIR/dc.env); loads N users into OU=Bench (BENCH_OU=NAME for another
# OU, e.g. one per N) and a group CN=<OU>-All holding them if they are not
# there yet, using the DC script named by
# SAMBA_DC_UP (default: .ci/samba-dc.sh if present, else
# /work/shared/reference/samba-dc-up.sh).
set -euo pipefail

N=${1:-10000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DC_ENV=${DC_ENV:-${DC_DIR:+$DC_DIR/dc.env}}
DC_ENV=${DC_ENV:-/tmp/ad/dc.env}
[ -f "$DC_ENV" ] || { echo "bench-ad: no $DC_ENV; start the DC first (.ci/run)" >&2; exit 1; }
set -a
# shellcheck disable=SC1090
. "$DC_ENV"
set +a
if [ -z "${SAMBA_DC_UP:-}" ]; then
	if [ -f "$ROOT/.ci/samba-dc.sh" ]; then SAMBA_DC_UP=$ROOT/.ci/samba-dc.sh; else SAMBA_DC_UP=/work/shared/reference/samba-dc-up.sh; fi
fi
export LDAPTLS_CACERT=$DC_CA_CERT
OU_NAME=${BENCH_OU:-Bench}
OU="OU=$OU_NAME,$DC_BASE_DN"
GROUP="CN=$OU_NAME-All,$OU"
PREFIX=benchuser
[ "$OU_NAME" = Bench ] || PREFIX=$(echo "$OU_NAME" | tr 'A-Z' 'a-z')u # sAMAccountNames are domain-wide
ATTRS="objectSid objectGUID userAccountControl sAMAccountName userPrincipalName accountExpires mail givenName sn"
FILTER="(&(objectClass=user)(memberOf=$GROUP))"
lds() { ldapsearch -LLL -o ldif-wrap=no -x -H "$DC_LDAPS_URL" -D "$DC_BIND_DN" -w "$DC_BIND_PASSWORD" "$@"; }
# The timed read binds as the least-privilege reader, as the Go benchmark does
# (Administrator when dc.env predates the reader).
ldr() { ldapsearch -LLL -o ldif-wrap=no -x -H "$DC_LDAPS_URL" -D "${DC_READER_DN:-$DC_BIND_DN}" -w "${DC_READER_PASSWORD:-$DC_BIND_PASSWORD}" "$@"; }
now() { date +%s.%N; }

# 1. Fixture: N users under OU=Bench and a group holding them.
have=$(lds -b "$OU" -s one -E pr=1000/noprompt "(sAMAccountName=$PREFIX*)" 1.1 2>/dev/null | grep -c '^dn:' || true)
if [ "$have" -lt "$N" ]; then
	echo "bench-ad: loading $N users into $OU (have $have)" >&2
	if [ "$have" -gt 0 ]; then
		echo "bench-ad: $OU holds $have of $N users; remove it or use another N" >&2
		exit 1
	fi
	bash "$SAMBA_DC_UP" "$DC_DIR" bulk "$N" "OU=$OU_NAME" "$PREFIX"
fi
members=$(lds -b "$GROUP" -s base '(objectClass=*)' 'member;range=0-*' 2>/dev/null | grep -ci '^member' || true)
if [ "$members" -lt "$N" ]; then
	echo "bench-ad: filling $GROUP with $N members" >&2
	tmp=$(mktemp)
	trap 'rm -f "$tmp"' EXIT
	if ! lds -b "$GROUP" -s base '(objectClass=*)' 1.1 >/dev/null 2>&1; then
		printf 'dn: %s\nchangetype: add\nobjectClass: group\nsAMAccountName: %s-All\n\n' "$GROUP" "$OU_NAME" >"$tmp"
		ldapmodify -x -H "$DC_LDAPS_URL" -D "$DC_BIND_DN" -w "$DC_BIND_PASSWORD" -f "$tmp" >/dev/null
	fi
	printf 'dn: %s\nchangetype: modify\nreplace: member\n-\n\n' "$GROUP" >"$tmp"
	ldapmodify -x -H "$DC_LDAPS_URL" -D "$DC_BIND_DN" -w "$DC_BIND_PASSWORD" -f "$tmp" >/dev/null
	# in modifies of 5,000 values: one modify of 100,000 is slow on Samba
	lds -b "$OU" -s one -E pr=1000/noprompt "(sAMAccountName=$PREFIX*)" 1.1 | sed -n 's/^dn: /member: /p' | head -n "$N" |
		split -l 5000 - "$tmp.part."
	for part in "$tmp".part.*; do
		{
			printf 'dn: %s\nchangetype: modify\nadd: member\n' "$GROUP"
			cat "$part"
			printf -- '-\n\n'
		} >"$tmp"
		ldapmodify -x -H "$DC_LDAPS_URL" -D "$DC_BIND_DN" -w "$DC_BIND_PASSWORD" -f "$tmp" >/dev/null
		rm -f "$part"
	done
fi

# 2. Build the benchmark binary first, so compilation is not timed.
bin=$(mktemp -d)/ad.test
(cd "$ROOT" && go test -c -o "$bin" ./providers/activedirectory/)

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# 3. Both readers, interleaved, 5 runs each.
RUNS=${RUNS:-5}
ours=() raw=() rss=() count=0
for i in $(seq 1 "$RUNS"); do
	out=$(PANDASYNC_BENCH_GROUP=$GROUP /usr/bin/time -f 'maxrss %M' "$bin" -test.run '^$' -test.bench '^BenchmarkReadSamba$' -test.benchtime 1x -test.count 1 2>&1)
	rss+=("$(echo "$out" | awk '/^maxrss/ {printf "%.0f", $2 / 1024}')")
	ns=$(echo "$out" | awk '/^BenchmarkReadSamba/ {for (i = 1; i <= NF; i++) if ($(i+1) == "ns/op") print $i}')
	[ -n "$ns" ] || { echo "$out" >&2; exit 1; }
	ours+=("$(awk -v n="$ns" 'BEGIN {printf "%.3f", n / 1e9}')")
	[ "$i" = 1 ] && echo "$out" | grep '^BenchmarkReadSamba' >&2

	t0=$(now)
	# shellcheck disable=SC2086
	count=$(ldr -b "$DC_BASE_DN" -E pr=1000/noprompt "$FILTER" $ATTRS | grep -c '^dn:')
	raw+=("$(awk -v s="$t0" -v e="$(now)" 'BEGIN {printf "%.3f", e - s}')")
done
o=$(printf '%s\n' "${ours[@]}" | median)
l=$(printf '%s\n' "${raw[@]}" | median)
echo "entries: $count users in $GROUP (N=$N), attributes: $ATTRS"
echo "pandasync Reader.Read      median of $RUNS: ${o}s   (runs: ${ours[*]})"
echo "ldapsearch -E pr=1000      median of $RUNS: ${l}s   (runs: ${raw[*]})"
echo "reader process max RSS (MiB; two reads, GOGC=${GOGC:-100}${GOMEMLIMIT:+ GOMEMLIMIT=$GOMEMLIMIT}): ${rss[*]}"
awk -v o="$o" -v l="$l" 'BEGIN {printf "ratio pandasync/ldapsearch: %.2f  (bar: <= 1.25, or within +0.5 s: %s)\n", o / l, (o <= 1.25 * l || o <= l + 0.5) ? "PASS" : "FAIL"}'
