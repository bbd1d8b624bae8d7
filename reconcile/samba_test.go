package reconcile

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// denyRead adds a deny ACE for the reader account to an object of the
// Samba world, with samba-tool as Administrator: sddl is the ACE with
// READER standing for the reader's SID.
func (w *world) denyRead(t *testing.T, dn, sddl string) {
	t.Helper()
	sid := os.Getenv("DC_READER_SID")
	if sid == "" {
		t.Skip("set DC_READER_SID (.ci/samba-dc.sh writes it) to change ACLs for the reader account")
	}
	out, err := exec.Command("samba-tool", "dsacl", "set", "-H", os.Getenv("DC_LDAP_URL"),
		"-U", os.Getenv("DC_BIND_UPN")+"%"+os.Getenv("DC_BIND_PASSWORD"),
		"--objectdn="+w.dn(dn), "--sddl="+strings.ReplaceAll(sddl, "READER", sid)).CombinedOutput()
	if err != nil {
		t.Fatalf("samba-tool dsacl set on %s: %v\n%s", dn, err, out)
	}
}

// TestSambaUnreadableMemberIsNotDeprovisioned covers defect 6 against a
// real AD: a member the reader account may not read, or whose objectSid
// it may not read, is reported by DN, and neither its user nor its record
// is deactivated; the rest of the plan goes ahead.
func TestSambaUnreadableMemberIsNotDeprovisioned(t *testing.T) {
	tests := map[string]struct {
		sddl     string
		wantCode ProblemCode
	}{
		// Deny read property, list contents and read control: the object
		// is invisible to the reader.
		"object hidden": {sddl: "(D;;RPLCLORC;;;READER)", wantCode: ProblemMemberUnreadable},
		// Deny reading objectSid only (its schemaIDGUID).
		"objectSid hidden": {sddl: "(OD;;RP;bf9679e8-0de6-11d0-a285-00aa003049e2;;READER)", wantCode: ProblemMemberNoKey},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newSambaWorld(t)
			w.converge()
			before := w.emu.Stats().Requests
			w.denyRead(t, bobDN, tc.sddl)
			w.replace("CN=Alice Archer"+people, "department", "Finance") // the rest proceeds

			p := w.plan(Options{})
			for _, c := range p.Changes {
				if c.Action == ActionDeactivate {
					t.Errorf("planned %s %s %s (%s) after the reader lost sight of bob", c.Action, c.Kind, c.Name, c.Reason)
				}
			}
			if diff := cmp.Diff([]row{{"staff", KindRecord, ActionUpdate, w.upn("alice"), "AD differs in Department"}}, rows(p.Changes)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			var got []string
			for _, e := range p.Errors {
				if e.Code == tc.wantCode && strings.EqualFold(e.Object, w.dn(bobDN)) {
					got = append(got, e.Mapping)
				}
			}
			if diff := cmp.Diff([]string{"staff", "users"}, got); diff != "" {
				t.Errorf("mappings reporting bob as %s (-want +got):\n%s\nall problems: %v", tc.wantCode, diff, p.Errors)
			}
			for _, b := range p.Blocked {
				if b.Limit != GuardIncompleteRead {
					t.Errorf("blocked by %s, want %s: %v", b.Limit, GuardIncompleteRead, b)
				}
				if b.ReasonCode == ReasonDeletedFromAD {
					t.Errorf("blocked %s %s claims %q of an account the reader cannot see", b.Kind, b.Name, b.Reason)
				}
			}
			w.apply(p)
			after := w.emu.Stats().Requests
			if n := after["PUT /v3/users/{id}"] - before["PUT /v3/users/{id}"]; n != 0 {
				t.Errorf("%d user update(s) sent; bob must keep his access", n)
			}
		})
	}
}
