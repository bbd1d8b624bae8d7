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

// useUsers takes what the user mappings read: each mapping's role and
// the users. A mapping whose role does not resolve is a problem and plans
// nothing, and guards the users of its module (of every module, when the
// account or module name itself does not resolve). read is false when no
// user was read (no mapping resolved, or the read failed: then every user
// mapping is a problem).
func (pl *planner) useUsers(ts *TargetState) (users []assetpanda.User, rs roleSet, read bool) {
	rs = roleSet{byMapping: map[string]*assetpanda.Role{}, names: map[int]string{}, modules: map[int]bool{}}
	for i, m := range pl.set.UserMappings {
		name := m.Metadata.Name
		r, err := ts.roles[i].role, ts.roles[i].err
		if err != nil {
			pl.unresolved[name] = true
			g := guard{kind: GuardUnresolvedMapping, takes: takeDeactivate | takeRole,
				detail: fmt.Sprintf("user mapping %q does not resolve", name),
				fix:    fmt.Sprintf("fix the problems of mapping %q", name)}
			pr, isNF := notFound(name, err)
			switch {
			case !isNF:
				pl.problem(readFailed(name, err))
				pl.moduleGuards[moduleOf(m.Spec.Account, m.Spec.Module)] = append(pl.moduleGuards[moduleOf(m.Spec.Account, m.Spec.Module)], g)
			case pr.Code == ProblemUnresolvedRole:
				pl.problem(pr)
				pl.moduleGuards[moduleOf(m.Spec.Account, m.Spec.Module)] = append(pl.moduleGuards[moduleOf(m.Spec.Account, m.Spec.Module)], g)
			default:
				// The module it was meant for is unknown: guard every user.
				pl.problem(pr)
				g.detail += " and its module is unknown, so no user anywhere is deactivated or has their role changed"
				pl.userGuards = append(pl.userGuards, g)
			}
			continue
		}
		rs.byMapping[name] = r
		rs.names[r.ID] = r.Name
		rs.modules[r.ModuleID] = true
	}
	if len(rs.byMapping) == 0 {
		return nil, rs, false
	}
	if !ts.usersRead {
		for _, m := range pl.set.UserMappings {
			if !pl.unresolved[m.Metadata.Name] {
				pl.unresolved[m.Metadata.Name] = true
				pl.problem(readFailed(m.Metadata.Name, ts.usersErr))
			}
		}
		return nil, rs, false
	}
	users = ts.users
	for _, u := range users {
		for _, ur := range u.Roles {
			if ur.Role != "" {
				if _, ok := rs.names[ur.RoleID]; !ok {
					rs.names[ur.RoleID] = ur.Role
				}
			}
		}
	}
	return users, rs, true
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

// planUsers computes the user changes of all resolved user mappings.
func (pl *planner) planUsers(users []assetpanda.User, rs roleSet) {
	// Two users carrying one SID are a conflict: neither is touched.
	bySID := make(map[string]*assetpanda.User, len(users))
	byEmail := make(map[string]*assetpanda.User, len(users))
	dupSID := map[string][]*assetpanda.User{}
	for i := range users {
		u := &users[i]
		if u.ADSID != "" {
			if first, dup := bySID[u.ADSID]; dup {
				if dupSID[u.ADSID] == nil {
					dupSID[u.ADSID] = []*assetpanda.User{first}
				}
				dupSID[u.ADSID] = append(dupSID[u.ADSID], u)
			} else {
				bySID[u.ADSID] = u
			}
		}
		if u.Email != "" {
			byEmail[strings.ToLower(u.Email)] = u
		}
	}
	for _, sid := range sortedKeys(dupSID) {
		delete(bySID, sid)
		var names []string
		for _, u := range dupSID[sid] {
			names = append(names, fmt.Sprintf("%s (id %d)", u.Email, u.ID))
		}
		pl.problem(Problem{Code: ProblemUserConflict, Key: sid,
			Message: fmt.Sprintf("users %s carry this AD SID; %s", strings.Join(names, " and "), noneChanged(len(names))),
			Fix:     "clear the AD SID (integ_ad_sid) of the users that are not this person"})
	}

	// Who is wanted, with which role in which module: the first mapping
	// of a module wins.
	wanted := make(map[string]*wantedUser, len(pl.res.Users))
	kept := map[string]bool{} // members left as they are (no email to write)
	var order []string
	for _, m := range pl.set.UserMappings {
		name := m.Metadata.Name
		role := rs.byMapping[name]
		if role == nil || pl.unresolved[name] {
			continue
		}
		f := m.Spec.Fields
		missingSID := 0
		for _, mb := range pl.members(m.Spec.Group, m.Spec.IncludeNested()) {
			sid := mb.u.SID
			if sid == "" {
				missingSID++
				pl.problem(Problem{Code: ProblemMemberNoKey, Mapping: name, Object: mb.u.DN,
					Message: "no objectSid readable by the bind account; skipped, and deactivations in this module are held back",
					Fix:     "let the bind account read objectSid of this account"})
				continue
			}
			if dupSID[sid] != nil {
				continue
			}
			w := wanted[sid]
			if w == nil {
				email := attr(mb.u, f.Email)
				if email == "" {
					email = mb.u.UPN
				}
				if email == "" {
					if !kept[sid] {
						kept[sid] = true
						pl.problem(Problem{Code: ProblemMemberNoEmail, Mapping: name, Key: sid, Object: mb.u.DN,
							Message: fmt.Sprintf("no %s and no userPrincipalName to use as the email; left as it is", f.Email),
							Fix:     fmt.Sprintf("give the account a %s or a userPrincipalName", f.Email)})
					}
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
							w.email, g.mapping.Metadata.Name, g.role.Name, name, role.Name,
							m.Spec.Account, m.Spec.Module, g.mapping.Metadata.Name, g.role.Name))
					}
				}
			}
			if !dup {
				w.grants = append(w.grants, grant{mapping: m, role: role, via: mb.via})
			}
		}
		if missingSID > 0 {
			mk := moduleOf(m.Spec.Account, m.Spec.Module)
			pl.moduleGuards[mk] = append(pl.moduleGuards[mk], guard{kind: GuardIncompleteRead, takes: takeDeactivate | takeRole,
				detail: fmt.Sprintf("%d member(s) of %s (mapping %q) have no readable objectSid, so their users cannot be told apart from leavers'", missingSID, m.Spec.Group, name),
				fix:    fmt.Sprintf("see the problems of mapping %q", name)})
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
					handled[e] = true // another person's user: left as it is
					pl.problem(Problem{Code: ProblemEmailTaken, Mapping: w.grants[0].mapping.Metadata.Name, Key: sid, Object: w.email,
						Message: fmt.Sprintf("the email belongs to user %d, managed for %s; skipped, neither is changed", e.ID, e.ADSID),
						Fix:     "give the AD accounts distinct emails, or clear the AD SID of the Asset Panda user if it is stale"})
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
	for _, m := range pl.set.UserMappings {
		if r := rs.byMapping[m.Metadata.Name]; r != nil && !pl.unresolved[m.Metadata.Name] {
			if _, ok := mappingOf[r.ModuleID]; !ok {
				mappingOf[r.ModuleID] = m
			}
		}
	}
	var gone []*assetpanda.User
	for i := range users {
		u := &users[i]
		if u.ADSID == "" || handled[u] || wanted[u.ADSID] != nil || kept[u.ADSID] || dupSID[u.ADSID] != nil {
			continue
		}
		for _, r := range u.Roles {
			if rs.modules[r.ModuleID] {
				gone = append(gone, u)
				break
			}
		}
	}
	for _, sid := range order {
		w := wanted[sid]
		if cur := bySID[sid]; cur != nil && cur.Active && len(w.grants) > 0 {
			pl.active[w.grants[0].mapping.Metadata.Name]++
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].ADSID < gone[j].ADSID })
	for _, u := range gone {
		if !u.Active {
			continue
		}
		m := pl.owner(u, rs, mappingOf)
		pl.active[m.Metadata.Name]++
		if m.Spec.OnRemove == spec.OnRemoveIgnore {
			continue
		}
		var modules []moduleKey
		for _, r := range u.Roles {
			modules = append(modules, moduleOf(r.Account, r.Module))
		}
		i := pl.add(Change{Mapping: m.Metadata.Name, Kind: KindUser, Action: ActionDeactivate, Key: u.ADSID,
			Target: Target{Account: m.Spec.Account, Module: m.Spec.Module},
			Before: map[string]string{UserActive: "true"}, After: map[string]string{UserActive: "false"},
			Reason: "no longer in any user mapping's group", ReasonCode: ReasonLeftGroup, Name: u.Email, ID: strconv.Itoa(u.ID)}, modules...)
		pl.gone = append(pl.gone, i)
	}
}

// owner is the mapping a managed user belongs to: the mapping whose role
// the user holds, else the first mapping of a module the user has a role in.
func (pl *planner) owner(u *assetpanda.User, rs roleSet, first map[int]spec.UserMapping) spec.UserMapping {
	for _, r := range u.Roles {
		for _, m := range pl.set.UserMappings {
			if role := rs.byMapping[m.Metadata.Name]; role != nil && !pl.unresolved[m.Metadata.Name] && role.ID == r.RoleID && role.ModuleID == r.ModuleID {
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
	off, why, code := inactive(w.u)
	target := func(g grant) Target { return Target{Account: g.mapping.Spec.Account, Module: g.mapping.Spec.Module} }
	module := func(g grant) moduleKey { return moduleOf(g.mapping.Spec.Account, g.mapping.Spec.Module) }

	if cur == nil {
		if off {
			return // a disabled member is never created
		}
		after := map[string]string{UserEmail: w.email, UserFirstName: w.first, UserLastName: w.last, UserRole: first.role.Name}
		pl.add(Change{Mapping: first.mapping.Metadata.Name, Kind: KindUser, Action: ActionCreate, Key: w.u.SID,
			Target: target(first), After: after, Reason: memberReason(first.mapping.Spec.Group, first.via), ReasonCode: ReasonMember, Name: w.email},
			module(first))
		for _, g := range w.grants[1:] {
			pl.add(Change{Mapping: g.mapping.Metadata.Name, Kind: KindUser, Action: ActionUpdate, Key: w.u.SID,
				Target: target(g), Before: map[string]string{UserRole: ""}, After: map[string]string{UserRole: g.role.Name},
				Reason:     memberReason(g.mapping.Spec.Group, g.via) + " (user created by " + first.mapping.Metadata.Name + ")",
				ReasonCode: ReasonRoleGranted, Name: w.email}, module(g))
		}
		return
	}

	id := strconv.Itoa(cur.ID)
	if off {
		if adopt || !cur.Active || first.mapping.Spec.OnRemove == spec.OnRemoveIgnore {
			return // never adopt a disabled account; nothing to do for an inactive one
		}
		var modules []moduleKey
		for _, r := range cur.Roles {
			modules = append(modules, moduleOf(r.Account, r.Module))
		}
		pl.add(Change{Mapping: first.mapping.Metadata.Name, Kind: KindUser, Action: ActionDeactivate, Key: w.u.SID,
			Target: target(first), Before: map[string]string{UserActive: "true"}, After: map[string]string{UserActive: "false"},
			Reason: why, ReasonCode: code, Name: w.email, ID: id}, append(modules, module(first))...)
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
	rc := ReasonADChanged
	if have := roleOf(cur, first.role.ModuleID); have != first.role.ID {
		set(UserRole, rs.name(have), first.role.Name)
		changed = append(changed, UserRole)
		if len(changed) == 1 {
			rc = ReasonRoleChanged
		}
	}
	action, reason := ActionUpdate, ""
	if len(changed) > 0 {
		reason = "AD differs in " + strings.Join(changed, ", ")
	}
	if adopt {
		set(UserADSID, "", w.u.SID)
		reason, rc = "adopt: existing user matched by email; "+memberReason(first.mapping.Spec.Group, first.via), ReasonAdopt
	}
	if !cur.Active {
		set(UserActive, "false", "true")
		action, reason, rc = ActionReactivate, "back in AD: "+memberReason(first.mapping.Spec.Group, first.via), ReasonBackInAD
	}
	if len(after) > 0 {
		pl.add(Change{Mapping: first.mapping.Metadata.Name, Kind: KindUser, Action: action, Key: w.u.SID,
			Target: target(first), Before: before, After: after, Reason: reason, ReasonCode: rc, Name: w.email, ID: id, Adopt: adopt},
			module(first))
	}
	for _, g := range w.grants[1:] {
		if have := roleOf(cur, g.role.ModuleID); have != g.role.ID {
			code := ReasonRoleChanged
			if have == 0 {
				code = ReasonRoleGranted
			}
			pl.add(Change{Mapping: g.mapping.Metadata.Name, Kind: KindUser, Action: ActionUpdate, Key: w.u.SID,
				Target: target(g), Before: map[string]string{UserRole: rs.name(have)}, After: map[string]string{UserRole: g.role.Name},
				Reason: memberReason(g.mapping.Spec.Group, g.via), ReasonCode: code, Name: w.email, ID: id}, module(g))
		}
	}
}

// incompleteFor reports whether an incomplete-read guard covers change i.
func (pl *planner) incompleteFor(i int, c Change) bool {
	g, ok := pl.guardFor(i, c, takeDeactivate)
	return ok && g.kind == GuardIncompleteRead
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
		case !ok && pl.incompleteFor(i, *c):
			// An account the lookup cannot find may be one the bind
			// account cannot read: do not claim it was deleted.
			c.Reason = "not found in AD: deleted, or not readable by the bind account"
		case !ok:
			c.Reason, c.ReasonCode = "deleted from AD", ReasonDeletedFromAD
		case u.Disabled:
			c.Reason, c.ReasonCode = "disabled in AD and "+c.Reason, ReasonDisabled
		}
	}
}
