package reconcile

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/spec"
)

// roleSet holds the roles the user mappings name, resolved to ids.
type roleSet struct {
	byMapping map[string]*assetpanda.Role
	names     map[int]string // role id → name
	modules   map[int]bool   // module ids that have a user mapping
}

func (rs roleSet) name(id int) string {
	if n, ok := rs.names[id]; ok {
		return n
	}
	if id == 0 {
		return ""
	}
	return "role #" + strconv.Itoa(id)
}

// observeUsers resolves every user mapping's role and reads all users.
// A mapping whose role cannot be resolved is reported and left out.
func (pl *planner) observeUsers(ctx context.Context, tgt TargetReader) ([]assetpanda.User, roleSet, error) {
	rs := roleSet{byMapping: map[string]*assetpanda.Role{}, names: map[int]string{}, modules: map[int]bool{}}
	for _, m := range pl.sel.users {
		r, err := tgt.Role(ctx, m.Spec.Account, m.Spec.Module, m.Spec.Role)
		if err != nil {
			pl.problem(m.Metadata.Name, "", "", "%v", err)
			continue
		}
		rs.byMapping[m.Metadata.Name] = r
		rs.names[r.ID] = r.Name
		rs.modules[r.ModuleID] = true
	}
	if len(rs.byMapping) == 0 {
		return nil, rs, nil
	}
	users, err := tgt.Users(ctx)
	if err != nil {
		return nil, rs, err
	}
	for _, u := range users {
		for _, ur := range u.Roles {
			if ur.Role != "" {
				if _, ok := rs.names[ur.RoleID]; !ok {
					rs.names[ur.RoleID] = ur.Role
				}
			}
		}
	}
	return users, rs, nil
}

// wantedUser is a person the user mappings want in Asset Panda.
type wantedUser struct {
	u     *activedirectory.User
	email string
	first string
	last  string
	// grants are the person's roles, one per module, in mapping order.
	grants []grant
}

type grant struct {
	mapping spec.UserMapping
	role    *assetpanda.Role
	via     []string
}

func roleOf(u *assetpanda.User, moduleID int) int {
	for _, r := range u.Roles {
		if r.ModuleID == moduleID {
			return r.RoleID
		}
	}
	return 0
}

// planUsers computes the user changes of all selected user mappings.
func (pl *planner) planUsers(users []assetpanda.User, rs roleSet) {
	bySID := make(map[string]*assetpanda.User, len(users))
	byEmail := make(map[string]*assetpanda.User, len(users))
	for i := range users {
		u := &users[i]
		if u.ADSID != "" {
			bySID[u.ADSID] = u
		}
		if u.Email != "" {
			byEmail[strings.ToLower(u.Email)] = u
		}
	}

	// Who is wanted, with which role in which module: the first mapping
	// of a module wins.
	wanted := make(map[string]*wantedUser, len(pl.res.Users))
	var order []string
	for _, m := range pl.sel.users {
		role := rs.byMapping[m.Metadata.Name]
		if role == nil {
			continue
		}
		ms, ok := pl.members(m.Spec.Group, nested(m.Spec.Nested))
		if !ok {
			pl.problem(m.Metadata.Name, "", m.Spec.Group, "group not found in AD; no user of this mapping is deactivated")
			continue
		}
		f := userFields(m.Spec.Fields)
		for _, mb := range ms {
			sid := mb.u.SID
			if sid == "" {
				pl.problem(m.Metadata.Name, "", mb.u.DN, "no objectSid; skipped")
				continue
			}
			w := wanted[sid]
			if w == nil {
				email := attr(mb.u, f.Email)
				if email == "" {
					email = mb.u.UPN
				}
				if email == "" {
					pl.problem(m.Metadata.Name, sid, mb.u.DN, "no %s and no userPrincipalName to use as the email; skipped", f.Email)
					continue
				}
				w = &wantedUser{u: mb.u, email: email, first: attr(mb.u, f.FirstName), last: attr(mb.u, f.LastName)}
				wanted[sid] = w
				order = append(order, sid)
			}
			dup := false
			for _, g := range w.grants {
				if g.role.ModuleID == role.ModuleID {
					dup = true
					if g.role.ID != role.ID {
						pl.plan.Notes = append(pl.plan.Notes, fmt.Sprintf(
							"%s is in mappings %q (role %q) and %q (role %q) of %s/%s: %q comes first, so the role is %q",
							w.email, g.mapping.Metadata.Name, g.role.Name, m.Metadata.Name, role.Name,
							m.Spec.Account, m.Spec.Module, g.mapping.Metadata.Name, g.role.Name))
					}
				}
			}
			if !dup {
				w.grants = append(w.grants, grant{mapping: m, role: role, via: mb.via})
			}
		}
	}

	handled := make(map[*assetpanda.User]bool, len(order))
	for _, sid := range order {
		w := wanted[sid]
		cur := bySID[sid]
		adopt := false
		if cur == nil {
			if e := byEmail[strings.ToLower(w.email)]; e != nil {
				if e.ADSID != "" {
					pl.problem(w.grants[0].mapping.Metadata.Name, sid, w.email,
						"email already belongs to a user managed for %s; skipped", e.ADSID)
					continue
				}
				cur, adopt = e, true
			}
		}
		if cur != nil {
			handled[cur] = true
		}
		pl.planUser(w, cur, adopt, rs)
	}

	// Managed users no mapping wants any more.
	mappingOf := map[int]spec.UserMapping{}
	for _, m := range pl.sel.users {
		if r := rs.byMapping[m.Metadata.Name]; r != nil {
			if _, ok := mappingOf[r.ModuleID]; !ok {
				mappingOf[r.ModuleID] = m
			}
		}
	}
	var gone []*assetpanda.User
	for i := range users {
		u := &users[i]
		if u.ADSID == "" || handled[u] || wanted[u.ADSID] != nil {
			continue
		}
		for _, r := range u.Roles {
			if rs.modules[r.ModuleID] {
				pl.managed[pl.owner(u, rs, mappingOf).Metadata.Name]++
				gone = append(gone, u)
				break
			}
		}
	}
	for _, w := range wanted {
		if len(w.grants) > 0 && bySID[w.u.SID] != nil {
			pl.managed[w.grants[0].mapping.Metadata.Name]++
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].ADSID < gone[j].ADSID })
	for _, u := range gone {
		if !u.Active {
			continue
		}
		m := pl.owner(u, rs, mappingOf)
		if m.Spec.OnRemove == "ignore" {
			continue
		}
		i := pl.add(Change{Mapping: m.Metadata.Name, Kind: KindUser, Action: ActionDeactivate, Key: u.ADSID,
			Target: Target{Account: m.Spec.Account, Module: m.Spec.Module},
			Before: map[string]string{UserActive: "true"}, After: map[string]string{UserActive: "false"},
			Reason: "no longer in any user mapping's group", Name: u.Email, ID: strconv.Itoa(u.ID)})
		pl.gone = append(pl.gone, i)
	}
}

// owner is the mapping a managed user belongs to: the mapping whose role
// the user holds, else the first mapping of a module the user has a role in.
func (pl *planner) owner(u *assetpanda.User, rs roleSet, first map[int]spec.UserMapping) spec.UserMapping {
	for _, r := range u.Roles {
		for _, m := range pl.sel.users {
			if role := rs.byMapping[m.Metadata.Name]; role != nil && role.ID == r.RoleID && role.ModuleID == r.ModuleID {
				return m
			}
		}
	}
	for _, r := range u.Roles {
		if m, ok := first[r.ModuleID]; ok {
			return m
		}
	}
	return spec.UserMapping{}
}

// planUser plans the changes for one wanted person: one change for the
// module of the first mapping (names, email, activation, adoption and
// role), and one per further module whose role differs.
func (pl *planner) planUser(w *wantedUser, cur *assetpanda.User, adopt bool, rs roleSet) {
	first := w.grants[0]
	off, why := inactive(w.u)
	target := func(g grant) Target { return Target{Account: g.mapping.Spec.Account, Module: g.mapping.Spec.Module} }

	if cur == nil {
		if off {
			return // a disabled member is never created
		}
		after := map[string]string{UserEmail: w.email, UserFirstName: w.first, UserLastName: w.last, UserRole: first.role.Name}
		pl.add(Change{Mapping: first.mapping.Metadata.Name, Kind: KindUser, Action: ActionCreate, Key: w.u.SID,
			Target: target(first), After: after, Reason: memberReason(first.mapping.Spec.Group, first.via), Name: w.email})
		for _, g := range w.grants[1:] {
			pl.add(Change{Mapping: g.mapping.Metadata.Name, Kind: KindUser, Action: ActionUpdate, Key: w.u.SID,
				Target: target(g), Before: map[string]string{UserRole: ""}, After: map[string]string{UserRole: g.role.Name},
				Reason: memberReason(g.mapping.Spec.Group, g.via) + " (user created by " + first.mapping.Metadata.Name + ")", Name: w.email})
		}
		return
	}

	id := strconv.Itoa(cur.ID)
	if off {
		if adopt || !cur.Active || first.mapping.Spec.OnRemove == "ignore" {
			return // never adopt a disabled account; nothing to do for an inactive one
		}
		pl.add(Change{Mapping: first.mapping.Metadata.Name, Kind: KindUser, Action: ActionDeactivate, Key: w.u.SID,
			Target: target(first), Before: map[string]string{UserActive: "true"}, After: map[string]string{UserActive: "false"},
			Reason: why, Name: w.email, ID: id})
		return
	}

	var before, after map[string]string
	set := func(field, was, now string) {
		if before == nil {
			before, after = map[string]string{}, map[string]string{}
		}
		before[field], after[field] = was, now
	}
	var changed []string
	diff := func(field, was, want string, fold bool) {
		same := was == want
		if fold {
			same = strings.EqualFold(was, want)
		}
		if !same {
			set(field, was, want)
			changed = append(changed, field)
		}
	}
	diff(UserEmail, cur.Email, w.email, true)
	diff(UserFirstName, cur.FirstName, w.first, false)
	diff(UserLastName, cur.LastName, w.last, false)
	if have := roleOf(cur, first.role.ModuleID); have != first.role.ID {
		set(UserRole, rs.name(have), first.role.Name)
		changed = append(changed, UserRole)
	}
	action, reason := ActionUpdate, ""
	if len(changed) > 0 {
		reason = "AD differs in " + strings.Join(changed, ", ")
	}
	if adopt {
		set(UserADSID, "", w.u.SID)
		reason = "adopt: existing user matched by email; " + memberReason(first.mapping.Spec.Group, first.via)
	}
	if !cur.Active {
		set(UserActive, "false", "true")
		action, reason = ActionReactivate, "back in AD: "+memberReason(first.mapping.Spec.Group, first.via)
	}
	if len(after) > 0 {
		pl.add(Change{Mapping: first.mapping.Metadata.Name, Kind: KindUser, Action: action, Key: w.u.SID,
			Target: target(first), Before: before, After: after, Reason: reason, Name: w.email, ID: id, Adopt: adopt})
	}
	for _, g := range w.grants[1:] {
		if have := roleOf(cur, g.role.ModuleID); have != g.role.ID {
			pl.add(Change{Mapping: g.mapping.Metadata.Name, Kind: KindUser, Action: ActionUpdate, Key: w.u.SID,
				Target: target(g), Before: map[string]string{UserRole: rs.name(have)}, After: map[string]string{UserRole: g.role.Name},
				Reason: memberReason(g.mapping.Spec.Group, g.via), Name: w.email, ID: id})
		}
	}
}

// explainDeactivations looks up the SIDs of people who left every mapped
// group, to tell "deleted from AD" and "disabled" from "left the group".
// A failed lookup only leaves the generic reason.
func (pl *planner) explainDeactivations(ctx context.Context, dir DirectoryReader) {
	if len(pl.gone) == 0 {
		return
	}
	var sids []string
	for _, i := range pl.gone {
		sids = append(sids, pl.plan.Changes[i].Key)
	}
	found, err := dir.Lookup(ctx, sids, nil)
	if err != nil {
		pl.plan.Notes = append(pl.plan.Notes, fmt.Sprintf("could not tell deleted from departed accounts: %v", err))
		return
	}
	for _, i := range pl.gone {
		c := &pl.plan.Changes[i]
		u, ok := found[c.Key]
		switch {
		case !ok:
			c.Reason = "deleted from AD"
		case u.Disabled:
			c.Reason = "disabled in AD and " + c.Reason
		}
	}
}
