package reconcile

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/spec"
)

// fakeDirectory is an in-memory DirectoryReader holding one read result.
type fakeDirectory struct{ res *activedirectory.Result }

func (f fakeDirectory) Read(context.Context, activedirectory.Query) (*activedirectory.Result, error) {
	return f.res, nil
}

func (f fakeDirectory) Lookup(_ context.Context, sids []string, _ []string) (map[string]*activedirectory.User, error) {
	found := map[string]*activedirectory.User{}
	for _, u := range f.res.Users {
		found[u.SID] = u
	}
	out := map[string]*activedirectory.User{}
	for _, s := range sids {
		if u, ok := found[s]; ok {
			out[s] = u
		}
	}
	return out, nil
}

// fakeTarget is an in-memory TargetReader.
type fakeTarget struct {
	col     *assetpanda.Collection
	records []assetpanda.Record
	roles   map[string]*assetpanda.Role
	users   []assetpanda.User
}

func (f *fakeTarget) Collection(context.Context, string, string, string) (*assetpanda.Collection, error) {
	return f.col, nil
}

func (f *fakeTarget) Role(_ context.Context, _, _, role string) (*assetpanda.Role, error) {
	return f.roles[role], nil
}

func (f *fakeTarget) Records(context.Context, *assetpanda.Collection) ([]assetpanda.Record, error) {
	return f.records, nil
}

func (f *fakeTarget) Users(context.Context) ([]assetpanda.User, error) { return f.users, nil }

// steadySpec is the spec of the steady-state world.
const steadySpec = `apiVersion: pandasync.dev/v1alpha1
kind: Connection
metadata: {name: bench}
spec:
  directory:
    urls: [ldaps://dc.example.com]
    baseDN: DC=corp,DC=example,DC=com
    bindDN: CN=pandasync,DC=corp,DC=example,DC=com
    password: {env: AD_PASSWORD}
  assetPanda:
    clientID: {env: AP_CLIENT_ID}
    clientSecret: {env: AP_CLIENT_SECRET}
    email: admin@example.com
    password: {env: AP_PASSWORD}
---
apiVersion: pandasync.dev/v1alpha1
kind: UserMapping
metadata: {name: users}
spec: {account: Acme, module: IT Assets, role: Collaborator, group: "CN=All Staff,OU=Groups,DC=corp,DC=example,DC=com"}
---
apiVersion: pandasync.dev/v1alpha1
kind: CollectionMapping
metadata: {name: people}
spec:
  account: Acme
  module: IT Assets
  collection: People
  group: CN=All Staff,OU=Groups,DC=corp,DC=example,DC=com
  key: {field: AD SID}
  fields:
    - {field: Email, attribute: mail}
    - {field: First Name, attribute: givenName}
    - {field: Department, attribute: department}
  status: {}
`

// steadyState builds n people who are all in AD and all in Asset Panda
// exactly as the spec wants them: the plan must be empty.
func steadyState(n int) (*spec.Set, fakeDirectory, *fakeTarget) {
	const group = "CN=All Staff,OU=Groups,DC=corp,DC=example,DC=com"
	set, err := spec.Parse(map[string][]byte{"spec.yaml": []byte(steadySpec)})
	if err != nil {
		panic(err)
	}
	role := &assetpanda.Role{ID: 2, Account: "Acme", Module: "IT Assets", Name: "Collaborator", AccountID: 1, ModuleID: 1}
	col := &assetpanda.Collection{ID: 1, Account: "Acme", Module: "IT Assets", Name: "People", AccountID: 1, ModuleID: 1,
		Fields: []assetpanda.Field{{ID: 1, Key: "field_1", Name: "AD SID", Type: "text", Unique: true},
			{ID: 2, Key: "field_2", Name: "Email", Type: "text"}, {ID: 3, Key: "field_3", Name: "First Name", Type: "text"},
			{ID: 4, Key: "field_4", Name: "Department", Type: "text"},
			{ID: 5, Key: "field_5", Name: "Integration Status AD", Type: "list", Options: []assetpanda.Option{{ID: 1, Name: "Active"}, {ID: 2, Name: "Inactive"}, {ID: 3, Name: "None"}}}}}
	res := &activedirectory.Result{Groups: map[string]*activedirectory.Group{}, Users: make(map[string]*activedirectory.User, n),
		Schema: activedirectory.NewSchema("objectSid", "mail", "givenName", "sn", "department")}
	g := &activedirectory.Group{DN: group, Exists: true, Via: make(map[string][]string, n)}
	tgt := &fakeTarget{col: col, roles: map[string]*assetpanda.Role{"Collaborator": role}}
	for i := 0; i < n; i++ {
		dn := fmt.Sprintf("cn=user%06d,ou=people,dc=corp,dc=example,dc=com", i)
		sid := fmt.Sprintf("S-1-5-21-1004336348-1177238915-682003330-%d", 100000+i)
		mail := fmt.Sprintf("user%06d@corp.example.com", i)
		res.Users[dn] = activedirectory.User{DN: dn, SID: sid, UPN: mail, SAMAccountName: fmt.Sprintf("user%06d", i)}.WithAttrs(
			map[string][]string{"mail": {mail}, "givenName": {fmt.Sprintf("Given%d", i)}, "sn": {fmt.Sprintf("Sur%d", i)}, "department": {"Dept"}})
		g.Members = append(g.Members, dn)
		g.Via[dn] = []string{group}
		tgt.records = append(tgt.records, assetpanda.Record{ID: fmt.Sprintf("%024x", i), Fields: map[string]string{
			"AD SID": sid, "Email": mail, "First Name": fmt.Sprintf("Given%d", i), "Department": "Dept", "Integration Status AD": "Active"}})
		tgt.users = append(tgt.users, assetpanda.User{ID: i + 1, Email: mail, FirstName: fmt.Sprintf("Given%d", i), LastName: fmt.Sprintf("Sur%d", i),
			Active: true, ADSID: sid, Roles: []assetpanda.UserRole{{AccountID: 1, ModuleID: 1, RoleID: 2}}})
	}
	res.Groups[group] = g
	return set, fakeDirectory{res}, tgt
}

// TestSteadyStateIsEmpty checks the benchmark's premise: a directory and
// Asset Panda that agree give an empty plan.
func TestSteadyStateIsEmpty(t *testing.T) {
	set, dir, tgt := steadyState(100)
	p, err := MakePlan(context.Background(), set, dir, tgt, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.HasChanges() || len(p.Errors) > 0 || len(p.Blocked) > 0 {
		t.Fatalf("plan of a steady state: changes %v, errors %v, blocked %v", rows(p.Changes), p.Errors, p.Blocked)
	}
}

// BenchmarkPlan measures planning (desired state, diff, limits and
// fingerprints) over in-memory inputs, without I/O: the goal is under one
// second of CPU for 100,000 people in a user and a collection mapping.
//
//	go test -run '^$' -bench Plan -benchmem ./reconcile/
func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			set, dir, tgt := steadyState(n)
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				p, err := MakePlan(context.Background(), set, dir, tgt, Options{})
				if err != nil || p.HasChanges() {
					b.Fatalf("plan: %v, %d changes", err, len(p.Changes))
				}
			}
		})
	}
}

// BenchmarkPlanFrom measures planning alone from inputs already read (a
// delta pass of pandasync run plans from its in-memory view this way):
// desired state, diff, limits and fingerprints.
//
//	go test -run '^$' -bench PlanFrom -benchmem ./reconcile/
func BenchmarkPlanFrom(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			set, dir, tgt := steadyState(n)
			ts, err := ReadTarget(context.Background(), set, tgt)
			if err != nil {
				b.Fatal(err)
			}
			tgt.records = nil
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				o, err := PlanFrom(context.Background(), set, dir.res, ts, dir, Options{})
				if err != nil || o.Plan.HasChanges() {
					b.Fatalf("plan: %v", err)
				}
			}
		})
	}
}
