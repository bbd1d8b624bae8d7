#!/usr/bin/env bash
# samba-dc.sh - throw-away Samba 4 Active Directory DC on a loopback address,
# for pandasync's real-AD tests and CI (see .ci/run). Adapted from the team's
# reference script (shared/reference/samba-dc-up.sh).
# Works as root on Debian 12 (samba 2:4.17), no systemd, no docker; idempotent.
#
# Usage:
#   samba-dc.sh DIR [up]       install Debian's samba-ad-dc samba-ad-provision ldap-utils if
#                              missing, provision into DIR (unless DIR/.provisioned exists),
#                              start on DC_IP, wait until LDAP answers, create the
#                              least-privilege reader account if missing (a plain domain user,
#                              member of Domain Users only), write DIR/dc.env and print it
#                              (LDAP URLs and credentials).
#                              Settings used at provision time are kept in DIR/dc.settings
#                              and win over the environment on later calls.
#   samba-dc.sh DIR down       stop the DC started from DIR (by the pid in DIR/samba.pid)
#   samba-dc.sh DIR status     exit 0 if it runs and LDAP answers
#   samba-dc.sh DIR load FILE.ldif
#                              add the entries of an LDIF fixture over LDAPS (ldapadd with
#                              LDAPTLS_CACERT=DIR/tls/ca.pem) as Administrator. What a DC
#                              assigns itself is stripped (objectSid, objectGUID, memberOf,
#                              uSNCreated, uSNChanged, distinguishedName, objectCategory, name,
#                              whenCreated, whenChanged); every user gets a unicodePwd (its
#                              userPassword if it has one, else DC_USER_PASS) so that
#                              userAccountControl 512 is accepted; when the fixture's naming
#                              context differs from the DC's, DNs are rewritten to the DC's.
#                              Entries that already exist are left alone (re-running is safe).
#                              The embedded server's access-control pseudo-attributes become
#                              deny ACEs for the reader account: "x-embedded-hidden: TRUE"
#                              denies it RPLCLORC on the entry, "x-embedded-hidden-attribute:
#                              NAME" denies it reading property NAME (by its schemaIDGUID).
#   samba-dc.sh DIR ldif FILE.ldif
#                              print what "load" would send, without sending it
#   samba-dc.sh DIR bulk N [OU] [PREFIX] [PASSWORD]
#                              add N users fast (in-process, batched, ldb batch_mode)
#                              into OU (default OU=Bulk, created if missing); the DC may be
#                              up or down. Without PASSWORD users get userAccountControl 546.
#
# Knobs (environment):
#   DC_REALM=EXAMPLE.TEST  DC_DOMAIN=EXAMPLE  DC_HOST=dc1  DC_ADMIN_PASS='Passw0rd!Admin'
#   DC_IP=127.0.0.1        any 127.x.y.z works without touching lo; one DC per IP
#                          (LDAP ports 389/636/3268/3269 are hard-coded in Samba)
#   DC_BACKEND=mdb         mdb or tdb
#   DC_SERVICES=ldap       e.g. "ldap kdc" if Kerberos is wanted
#   DC_MODEL=single        samba process model: single (1 process) | prefork | standard
#   DC_STRONG_AUTH=no      "no" allows simple binds on plain ldap://389 (Samba default is yes)
#   DC_NOSYNC=yes          ldb:nosync (no fsync; faster writes; fine for throw-away DCs)
#   DC_TIMEOUT=60          seconds to wait for LDAP
#   DC_USER_PASS='Passw0rd!User1'  password "load" gives users that have no userPassword
#   DC_READER_NAME=svc-pandasync-reader  DC_READER_PASS='Passw0rd!Reader1'
#                          the least-privilege account the tests read as (kept in dc.settings)
#
# Output: DIR/etc/smb.conf, DIR/private/sam.ldb, DIR/tls/{ca.pem,cert.pem,key.pem},
#         DIR/samba.log, DIR/samba.pid, DIR/dc.env (shell-sourceable connection facts:
#         DC_LDAP_URL DC_LDAPS_URL DC_BASE_DN DC_BIND_UPN DC_BIND_DN DC_BIND_PASSWORD
#         (Administrator: for loading fixtures and setting ACLs only) DC_READER_UPN
#         DC_READER_DN DC_READER_PASSWORD DC_READER_SID (the reader) DC_CA_CERT ...).
# Passwords and names must not contain single quotes (they are written to shell files).
set -euo pipefail

DIR=${1:?usage: samba-dc.sh DIR [up|down|status|load FILE.ldif|ldif FILE.ldif|bulk N [OU] [PREFIX] [PASSWORD]]}
ACTION=${2:-up}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

# Settings baked in at provision time win over the environment on later calls.
if [ -f "$DIR/dc.settings" ]; then
	# shellcheck disable=SC1091
	. "$DIR/dc.settings"
fi
DC_REALM=${DC_REALM:-EXAMPLE.TEST}
DC_DOMAIN=${DC_DOMAIN:-EXAMPLE}
DC_HOST=${DC_HOST:-dc1}
DC_ADMIN_PASS=${DC_ADMIN_PASS:-Passw0rd!Admin}
DC_IP=${DC_IP:-127.0.0.1}
DC_BACKEND=${DC_BACKEND:-mdb}
DC_SERVICES=${DC_SERVICES:-ldap}
DC_MODEL=${DC_MODEL:-single}
DC_STRONG_AUTH=${DC_STRONG_AUTH:-no}
DC_NOSYNC=${DC_NOSYNC:-yes}
DC_TIMEOUT=${DC_TIMEOUT:-60}
DC_USER_PASS=${DC_USER_PASS:-Passw0rd!User1}
DC_READER_NAME=${DC_READER_NAME:-svc-pandasync-reader}
DC_READER_PASS=${DC_READER_PASS:-Passw0rd!Reader1}

CONF=$DIR/etc/smb.conf
PIDFILE=$DIR/samba.pid
LOG=$DIR/samba.log
realm_lc=$(echo "$DC_REALM" | tr 'A-Z' 'a-z')
BASE_DN=$(echo "$realm_lc" | sed 's/^/DC=/; s/\./,DC=/g')

log() { echo "[samba-dc] $*" >&2; }
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN{printf "%.2f", e-s}'; }

install_pkgs() {
	if command -v samba >/dev/null && command -v samba-tool >/dev/null &&
		command -v ldapsearch >/dev/null && command -v openssl >/dev/null &&
		[ -d /usr/share/samba/setup ]; then
		return 0
	fi
	local t0 pkgs="samba-ad-dc samba-ad-provision ldap-utils"
	# naming an installed package would upgrade it (and its libraries) as a side effect
	command -v openssl >/dev/null || pkgs="$pkgs openssl"
	t0=$(now)
	log "installing $pkgs"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q --no-install-recommends $pkgs >"$DIR/apt.log" 2>&1; then
		apt-get update -q >>"$DIR/apt.log" 2>&1
		apt-get install -y -q --no-install-recommends $pkgs >>"$DIR/apt.log" 2>&1 ||
			{ tail -20 "$DIR/apt.log" >&2; exit 1; }
	fi
	log "installed in $(since "$t0")s"
}

make_tls() {
	local t=$DIR/tls
	[ -s "$t/cert.pem" ] && return 0
	mkdir -p "$t"
	(
		cd "$t"
		umask 077
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
			-subj "/CN=Samba test CA $DC_REALM" >/dev/null 2>&1
		openssl req -newkey rsa:2048 -nodes -keyout key.pem -out server.csr \
			-subj "/CN=$DC_HOST.$realm_lc" >/dev/null 2>&1
		printf 'subjectAltName=DNS:%s,DNS:%s,DNS:localhost,IP:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
			"$DC_HOST.$realm_lc" "$DC_HOST" "$DC_IP" >ext.cnf
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-out cert.pem -days 3650 -extfile ext.cnf >/dev/null 2>&1
		chmod 600 key.pem ca.key # samba refuses a key readable by others
		chmod 644 ca.pem cert.pem
	)
}

provision() {
	[ -f "$DIR/.provisioned" ] && return 0
	if [ -e "$CONF" ] || [ -e "$DIR/private" ]; then
		log "$DIR holds a half-made provision (no .provisioned marker); remove it and retry"
		exit 1
	fi
	local t0 services
	t0=$(now)
	services=$(echo "$DC_SERVICES" | sed 's/[ ,]\+/, /g')
	log "provisioning $DC_REALM ($DC_DOMAIN) into $DIR, backend $DC_BACKEND"
	cat >"$DIR/dc.settings" <<EOF
DC_REALM='$DC_REALM'
DC_DOMAIN='$DC_DOMAIN'
DC_HOST='$DC_HOST'
DC_ADMIN_PASS='$DC_ADMIN_PASS'
DC_IP='$DC_IP'
DC_BACKEND='$DC_BACKEND'
EOF
	# -s /dev/null: do not merge the distro /etc/samba/smb.conf into the new config.
	# --host-name: independent of the machine's hostname (must differ from --domain).
	samba-tool domain provision -s /dev/null --targetdir="$DIR" \
		--realm="$DC_REALM" --domain="$DC_DOMAIN" --host-name="$DC_HOST" \
		--server-role=dc --dns-backend=NONE --use-rfc2307 \
		--backend-store="$DC_BACKEND" \
		--adminpass="$DC_ADMIN_PASS" \
		--option="interfaces=$DC_IP/8" --option="bind interfaces only=yes" \
		>"$DIR/provision.log" 2>&1 || { tail -30 "$DIR/provision.log" >&2; exit 1; }
	make_tls
	mkdir -p "$DIR/run" "$DIR/cache"
	# Options that provision does not write (or that must not point at /run/samba,
	# /var/lib/samba or /var/log/samba, so several DCs can coexist).
	local extra
	extra=$(
		cat <<EOF
	server services = $services
	ldap server require strong auth = $DC_STRONG_AUTH
	ldb:nosync = $DC_NOSYNC
	log file = $DIR/log.%m
	pid directory = $DIR/run
	ncalrpc dir = $DIR/run/ncalrpc
	winbindd socket directory = $DIR/run/winbindd
	ntp signd socket directory = $DIR/run/ntp_signd
	tls enabled = yes
	tls keyfile = $DIR/tls/key.pem
	tls certfile = $DIR/tls/cert.pem
	tls cafile = $DIR/tls/ca.pem
	dns update command = /bin/true
	spn update command = /bin/true
EOF
	)
	# drop provision's own "server services" line, then add ours right after [global]
	awk -v extra="$extra" '
		/^[ \t]*server services[ \t]*=/ { next }
		{ print }
		/^\[global\]/ { print extra }' "$CONF" >"$CONF.new"
	mv "$CONF.new" "$CONF"
	# Default max password age is 42 days: a cached/prebuilt DC would start failing binds.
	samba-tool domain passwordsettings set --max-pwd-age=0 --min-pwd-age=0 \
		-s "$CONF" -H "$DIR/private/sam.ldb" >>"$DIR/provision.log" 2>&1
	touch "$DIR/.provisioned"
	log "provisioned in $(since "$t0")s"
}

is_running() {
	[ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

ldap_ok() {
	ldapsearch -x -LLL -o nettimeout=2 -H "ldap://$DC_IP" -s base -b '' \
		'(objectClass=*)' defaultNamingContext >/dev/null 2>&1
}

# ensure_reader: create the least-privilege reader if missing (a plain user: Domain
# Users only, no other group, no delegated right) and set READER_DN and READER_SID.
ensure_reader() {
	local show
	if ! show=$(samba-tool user show "$DC_READER_NAME" --attributes=objectSid,distinguishedName \
		-s "$CONF" -H "$DIR/private/sam.ldb" 2>/dev/null); then
		samba-tool user add "$DC_READER_NAME" "$DC_READER_PASS" \
			--description='pandasync least-privilege reader (tests bind as it)' \
			-s "$CONF" -H "$DIR/private/sam.ldb" >>"$DIR/provision.log" 2>&1 ||
			{ log "creating the reader $DC_READER_NAME failed; see $DIR/provision.log"; exit 1; }
		grep -q '^DC_READER_PASS=' "$DIR/dc.settings" 2>/dev/null ||
			printf "DC_READER_NAME='%s'\nDC_READER_PASS='%s'\n" "$DC_READER_NAME" "$DC_READER_PASS" >>"$DIR/dc.settings"
		show=$(samba-tool user show "$DC_READER_NAME" --attributes=objectSid,distinguishedName \
			-s "$CONF" -H "$DIR/private/sam.ldb")
		log "created the reader $DC_READER_NAME"
	fi
	READER_SID=$(sed -n 's/^objectSid: //p' <<<"$show")
	READER_DN=$(sed -n 's/^distinguishedName: //p' <<<"$show")
	[ -n "$READER_SID" ] && [ -n "$READER_DN" ] || { log "cannot read the reader's SID and DN"; exit 1; }
}

write_env() {
	cat >"$DIR/dc.env" <<EOF
DC_DIR='$DIR'
DC_LDAP_URL='ldap://$DC_IP:389'
DC_LDAPS_URL='ldaps://$DC_IP:636'
DC_GC_URL='ldap://$DC_IP:3268'
DC_BASE_DN='$BASE_DN'
DC_REALM='$DC_REALM'
DC_DOMAIN='$DC_DOMAIN'
DC_HOSTNAME='$DC_HOST.$realm_lc'
DC_BIND_UPN='Administrator@$realm_lc'
DC_BIND_DN='CN=Administrator,CN=Users,$BASE_DN'
DC_BIND_PASSWORD='$DC_ADMIN_PASS'
DC_READER_UPN='$DC_READER_NAME@$realm_lc'
DC_READER_DN='$READER_DN'
DC_READER_PASSWORD='$DC_READER_PASS'
DC_READER_SID='$READER_SID'
DC_CA_CERT='$DIR/tls/ca.pem'
DC_PID='$(cat "$PIDFILE" 2>/dev/null || true)'
EOF
}

start() {
	if is_running; then
		log "already running (pid $(cat "$PIDFILE"))"
	else
		local t0 pid
		t0=$(now)
		# -i: stay in foreground, log to stdout, own process group.
		# stdin must NOT be a pipe/socket: with -i samba exits when such a stdin hits EOF.
		samba -s "$CONF" -i --debug-stdout -M "$DC_MODEL" </dev/null >>"$LOG" 2>&1 &
		pid=$!
		echo "$pid" >"$PIDFILE"
		while ! ldap_ok; do
			if ! kill -0 "$pid" 2>/dev/null; then
				log "samba exited early; last log lines:"
				tail -20 "$LOG" >&2
				exit 1
			fi
			if [ "$(since "$t0" | cut -d. -f1)" -ge "$DC_TIMEOUT" ]; then
				log "LDAP did not answer within ${DC_TIMEOUT}s"
				tail -20 "$LOG" >&2
				exit 1
			fi
			sleep 0.1
		done
		log "LDAP answers on ldap://$DC_IP after $(since "$t0")s (pid $pid)"
	fi
	ensure_reader
	write_env
	cat "$DIR/dc.env"
}

stop() {
	if ! [ -s "$PIDFILE" ]; then
		log "no pid file"
		return 0
	fi
	local pid i
	pid=$(cat "$PIDFILE")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for i in $(seq 1 150); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	fi
	# samba -i made itself a process-group leader (pgid == pid); reap stragglers of
	# the prefork/standard models, which belong to that group.
	if pgrep -g "$pid" >/dev/null 2>&1; then
		kill -TERM -- "-$pid" 2>/dev/null || true
		sleep 1
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	rm -f "$PIDFILE"
	log "stopped (pid $pid)"
}

# ldif_for_dc FILE: print FILE rewritten for ldapadd into this DC (see "load" above).
ldif_for_dc() {
	local file=${1:?ldif FILE.ldif}
	[ -r "$file" ] || { log "cannot read $file"; exit 1; }
	ACL_OUT=${ACL_OUT:-} DC_BASE_DN=$BASE_DN DC_USER_PASS=$DC_USER_PASS /usr/bin/python3 - "$file" <<'PY'
import base64, os, re, sys

DROP = {"objectsid", "objectguid", "memberof", "usncreated", "usnchanged",
        "distinguishedname", "objectcategory", "name", "whencreated", "whenchanged",
        "instancetype", "userpassword", "unicodepwd"}
path = sys.argv[1]
target = os.environ["DC_BASE_DN"]
default_pw = os.environ["DC_USER_PASS"]
acl_out = os.environ.get("ACL_OUT")  # where to list the pseudo-attributes as ACEs to set
acls = []

def fail(msg):
    sys.exit(f"{path}: {msg}")

# Unfold lines, drop comments, split records.
records, cur, logical = [], [], []
with open(path, encoding="utf-8") as f:
    for n, raw in enumerate(f, 1):
        line = raw.rstrip("\r\n")
        if line.startswith(" "):
            if logical and logical[-1] is not None:
                logical[-1] = (logical[-1][0], logical[-1][1] + line[1:])
            continue
        if line.startswith("#"):
            logical.append(None)  # comment; its continuation lines are skipped too
            continue
        logical.append((n, line))
for item in logical:
    if item is None:
        continue
    n, line = item
    if not line.strip():
        if cur:
            records.append(cur)
            cur = []
        continue
    name, sep, rest = line.partition(":")
    if not sep:
        fail(f"line {n}: expected 'attribute: value'")
    if rest.startswith(":"):
        try:
            value = base64.b64decode(rest[1:].strip(), validate=True)
        except Exception as e:
            fail(f"line {n}: invalid base64: {e}")
    elif rest.startswith("<"):
        fail(f"line {n}: URL values are not supported")
    else:
        value = rest.lstrip(" ").encode("utf-8")
    cur.append((name, value))
if cur:
    records.append(cur)

def dc_suffix(dn):
    parts = re.split(r"(?<!\\),", dn)
    dcs = []
    for p in reversed(parts):
        if p.strip().lower().startswith("dc="):
            dcs.insert(0, p.strip())
        else:
            break
    return ",".join(dcs)

source = None
for rec in records:
    if rec[0][0].lower() == "dn" and source is None:
        source = dc_suffix(rec[0][1].decode("utf-8"))
rewrite = source and source.lower() != target.lower()
pattern = re.compile(r"(^|,)\s*" + re.escape(source).replace(",", r"\s*,\s*") + r"\s*$", re.I) if rewrite else None

def fix_dn(v):
    if not rewrite:
        return v
    s = v.decode("utf-8")
    return pattern.sub(lambda m: m.group(1) + target, s).encode("utf-8")

SAFE = re.compile(rb"^[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*$")
def emit(name, value):
    if value == b"" or SAFE.match(value) and not value.endswith(b" "):
        print(f"{name}: {value.decode('ascii')}")
    else:
        print(f"{name}:: {base64.b64encode(value).decode('ascii')}")

for rec in records:
    if rec[0][0].lower() != "dn":
        fail("record without dn")
    attrs = [(n, v) for n, v in rec[1:] if n.lower() != "changetype"]
    classes = {v.decode("utf-8", "replace").lower() for n, v in attrs if n.lower() == "objectclass"}
    pw = next((v for n, v in attrs if n.lower() == "userpassword"), None)
    dn = fix_dn(rec[0][1])
    emit("dn", dn)
    for n, v in attrs:
        if n.lower() == "x-embedded-hidden":
            if v.decode("utf-8").upper() == "TRUE":
                acls.append(("hide", dn.decode("utf-8"), ""))
            continue
        if n.lower() == "x-embedded-hidden-attribute":
            acls.append(("hideattr", dn.decode("utf-8"), v.decode("utf-8")))
            continue
        if n.lower() in DROP:
            continue
        if n.lower() in ("member", "manager", "managedby", "seealso"):
            v = fix_dn(v)
        emit(n, v)
    if "user" in classes and "computer" not in classes:
        secret = pw.decode("utf-8") if pw is not None else default_pw
        emit("unicodePwd", ('"' + secret + '"').encode("utf-16-le"))
    print()
if rewrite:
    print(f"# rewrote {source} to {target}", file=sys.stderr)
if acls and not acl_out:
    print(f"# {len(acls)} x-embedded-* pseudo-attributes dropped (\"load\" turns them into deny ACEs)", file=sys.stderr)
if acl_out:
    with open(acl_out, "w", encoding="utf-8") as f:
        for kind, dn, attr in acls:
            f.write(f"{kind}\t{dn}\t{attr}\n")
PY
}

# apply_acls FILE: deny the reader what FILE lists (from ldif_for_dc's ACL_OUT):
# "hide DN" -> (D;;RPLCLORC;;;reader), "hideattr DN ATTR" -> (OD;;RP;<schemaIDGUID>;;reader).
apply_acls() {
	local file=$1
	[ -s "$file" ] || return 0
	ensure_reader
	/usr/bin/python3 - "$CONF" "$READER_SID" "$file" <<'PY'
import sys
import ldb
from samba.samdb import SamDB
from samba.param import LoadParm
from samba.auth import system_session
from samba.sd_utils import SDUtils
from samba.ndr import ndr_unpack
from samba.dcerpc import misc
conf, sid, path = sys.argv[1:4]
lp = LoadParm(); lp.load(conf)
db = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp)
sdu = SDUtils(db)
schema = db.get_schema_basedn()
n = 0
for line in open(path, encoding="utf-8"):
    kind, dn, attr = line.rstrip("\n").split("\t")
    if kind == "hide":
        ace = f"(D;;RPLCLORC;;;{sid})"
    else:
        res = db.search(base=schema, scope=ldb.SCOPE_ONELEVEL,
                        expression=f"(lDAPDisplayName={ldb.binary_encode(attr)})", attrs=["schemaIDGUID"])
        if len(res) != 1:
            sys.exit(f"{dn}: x-embedded-hidden-attribute: no attribute {attr} in the schema")
        guid = str(ndr_unpack(misc.GUID, res[0]["schemaIDGUID"][0]))
        ace = f"(OD;;RP;{guid};;{sid})"
    if ace not in sdu.get_sd_as_sddl(dn):
        sdu.dacl_add_ace(dn, ace)
        n += 1
print(f"denied the reader {n} entries/attributes", file=sys.stderr)
PY
}

# load FILE: ldapadd the rewritten fixture over LDAPS; existing entries are kept.
load() {
	local file=${1:?load FILE.ldif} tmp out rc
	is_running && ldap_ok || { log "the DC in $DIR is not running; run: $0 $DIR up"; exit 1; }
	tmp=$(mktemp "$DIR/load.XXXXXX.ldif")
	ACL_OUT="$tmp.acl" ldif_for_dc "$file" >"$tmp"
	set +e
	out=$(LDAPTLS_CACERT="$DIR/tls/ca.pem" ldapadd -c -x -H "ldaps://$DC_IP" \
		-D "Administrator@$realm_lc" -w "$DC_ADMIN_PASS" -f "$tmp" 2>&1)
	rc=$?
	set -e
	rm -f "$tmp"
	local added existing failed
	added=$(grep -c '^adding new entry' <<<"$out" || true)
	existing=$(grep -c 'Already exists (68)' <<<"$out" || true)
	failed=$(grep '^ldap_add:\|^ldapadd:\|^ldap_sasl_bind\|^ldap_bind' <<<"$out" | grep -vc 'Already exists (68)' || true)
	if [ "$rc" -ne 0 ] && [ "$failed" -gt 0 ]; then
		echo "$out" >&2
		log "load of $file failed (ldapadd exit $rc)"
		exit 1
	fi
	apply_acls "$tmp.acl"
	rm -f "$tmp.acl"
	log "loaded $file into $BASE_DN: $((added - existing)) entries added, $existing already existed"
}

bulk() {
	local n=${1:?bulk N [OU] [PREFIX] [PASSWORD]} ou=${2:-OU=Bulk} prefix=${3:-bulkuser} pw=${4:-}
	# Writes straight into sam.ldb through Samba's own dsdb stack (same checks, SIDs, GUIDs,
	# USNs as over LDAP). Works while the DC runs. batch_mode skips ldb's per-operation
	# nested index transactions, which otherwise make each add O(#objects).
	/usr/bin/python3 - "$CONF" "$n" "$ou" "$prefix" "$pw" <<'PY'
import sys, time
import ldb
from samba.samdb import SamDB
from samba.param import LoadParm
from samba.auth import system_session
conf, n, ou, prefix, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
lp = LoadParm(); lp.load(conf)
db = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp, options=["batch_mode:1"])
base = str(db.domain_dn()); realm = lp.get("realm").lower()
oudn = ou if ou.lower().endswith(base.lower()) else f"{ou},{base}"
parts = ldb.Dn(db, oudn)
# create the OU chain if missing
for k in range(len(parts) - len(ldb.Dn(db, base)), 0, -1):
    dn = ",".join(oudn.split(",")[k - 1:])
    try:
        db.add({"dn": dn, "objectClass": "organizationalUnit"})
    except ldb.LdbError as e:
        if e.args[0] != ldb.ERR_ENTRY_ALREADY_EXISTS:
            raise
t0 = time.time(); batch = 1000
for start in range(0, n, batch):
    db.transaction_start()
    try:
        for i in range(start, min(n, start + batch)):
            u = f"{prefix}{i:05d}"
            m = {"dn": f"CN={u},{oudn}", "objectClass": "user", "sAMAccountName": u,
                 "userPrincipalName": f"{u}@{realm}", "givenName": f"Given{i}",
                 "sn": f"Sur{i}", "displayName": f"Given{i} Sur{i}", "mail": f"{u}@{realm}"}
            if pw:
                m["unicodePwd"] = ('"%s"' % pw).encode("utf-16-le")
                m["userAccountControl"] = "512"
            db.add(m)
    except Exception:
        db.transaction_cancel(); raise
    db.transaction_commit()
print(f"added {n} users under {oudn} in {time.time() - t0:.1f}s", file=sys.stderr)
PY
}

case "$ACTION" in
up)
	install_pkgs
	provision
	start
	;;
down) stop ;;
status)
	if is_running && ldap_ok; then
		echo "running (pid $(cat "$PIDFILE"))"
	else
		echo "not running"
		exit 1
	fi
	;;
bulk)
	shift 2
	bulk "$@"
	;;
load)
	load "${3:-}"
	;;
ldif)
	ldif_for_dc "${3:-}"
	;;
*)
	echo "unknown action: $ACTION" >&2
	exit 2
	;;
esac
