package assetpanda

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// User is an Asset Panda login user. ADSID is the AD objectSid it carries:
// pandasync's ownership mark (empty = not managed by pandasync).
type User struct {
	ID        int
	Email     string
	FirstName string
	LastName  string
	Active    bool
	ADSID     string
	Roles     []UserRole
}

// UserRole is a user's role in one module, by id and by name.
type UserRole struct {
	AccountID, ModuleID, RoleID int
	Account, Module, Role       string
}

// RoleIn returns the user's role in the module, if any.
func (u *User) RoleIn(moduleID int) (UserRole, bool) {
	for _, r := range u.Roles {
		if r.ModuleID == moduleID {
			return r, true
		}
	}
	return UserRole{}, false
}

// NewUser is a user to create with a role in the role's module.
type NewUser struct {
	Email, FirstName, LastName, ADSID string
	Role                              *Role
}

// UserUpdate changes a user; nil fields are left alone. Role sets the
// user's role in that role's module.
type UserUpdate struct {
	Email, FirstName, LastName, ADSID *string
	Active                            *bool
	Role                              *Role
}

// EmailIndex indexes users by lower-cased email.
func EmailIndex(users []User) map[string]*User {
	m := make(map[string]*User, len(users))
	for i := range users {
		m[strings.ToLower(users[i].Email)] = &users[i]
	}
	return m
}

// Users lists every login user, with the names of their roles. The list is
// read in pages of 1000 (offset/limit) and must prove it is complete: every
// page carries the X-Total-Count header, the total does not change between
// pages, every page but the last is full, every user carries an id and
// none arrives twice, the
// users add up to the total, and there is at least one (the API client's
// own user). Otherwise the read fails with an *Error
// matching ErrIncomplete.
func (c *Client) Users(ctx context.Context) ([]User, error) {
	const op = "list users"
	pc := pageCheck{what: "the users list", unit: "users"}
	var ws []wireUser
	for offset := 0; ; {
		var page []wireUser
		var rep reply
		q := url.Values{qOffset: {strconv.Itoa(offset)}, qLimit: {strconv.Itoa(usersPageSize)}}
		if err := c.do(ctx, request{op: op, route: routeUsers, query: q, out: &page, reply: &rep, idempotent: true}); err != nil {
			return nil, err
		}
		total, known := usersTotal(rep.header)
		if p := pc.total(total, known); p != nil {
			if !known {
				p.msg = "the users list: the reply carries no total (header " + hdrTotalCount + "), so the read cannot be shown complete"
			}
			return nil, p.err(op, "")
		}
		for _, w := range page {
			id := ""
			if w.ID != 0 {
				id = strconv.Itoa(w.ID)
			}
			if p := pc.id(id); p != nil {
				return nil, p.err(op, "")
			}
		}
		ws = append(ws, page...)
		c.progress(len(page))
		done, p := pc.page(offset, len(page), usersPageSize)
		if p != nil {
			return nil, p.err(op, "")
		}
		if done {
			break
		}
		offset += len(page)
	}
	if len(ws) == 0 {
		// The API client signs in as a user, so the list cannot be empty.
		return nil, (&incomplete{retry: true, msg: "the users list: the reply says there are no users, yet the API client's own user is one, so the read cannot be shown complete"}).err(op, "")
	}
	out := make([]User, 0, len(ws))
	for _, w := range ws {
		u, err := c.user(ctx, w)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// user converts a wire user, naming its roles (from cached lookups).
func (c *Client) user(ctx context.Context, w wireUser) (User, error) {
	u := User{ID: w.ID, Email: w.Email, FirstName: w.FirstName, LastName: w.LastName, Active: w.IsActive}
	if w.IntegADSID != nil {
		u.ADSID = *w.IntegADSID
	}
	if len(w.Roles) == 0 {
		return u, nil
	}
	accs, err := c.loadAccounts(ctx)
	if err != nil {
		return User{}, err
	}
	for _, wr := range w.Roles {
		ur := UserRole{AccountID: wr.AccountID, ModuleID: wr.ModuleID, RoleID: wr.RoleID}
		for _, a := range accs {
			for _, m := range a.Modules {
				if m.ID == wr.ModuleID {
					ur.Account, ur.Module = a.Name, m.Name
				}
			}
		}
		if ur.Module != "" {
			rs, err := c.moduleRoles(ctx, wr.ModuleID)
			if err != nil {
				return User{}, err
			}
			for _, r := range rs {
				if r.ID == wr.RoleID {
					ur.Role = r.Name
				}
			}
		}
		u.Roles = append(u.Roles, ur)
	}
	return u, nil
}

// CreateUser invites a user with a role in the role's module, in one
// request. If the outcome is unknown (timeout, dropped connection, 5xx) the
// user is looked up by email before anything is sent again. A 403 means the
// API client was not granted user creation.
func (c *Client) CreateUser(ctx context.Context, nu NewUser) (*User, error) {
	if nu.Role == nil {
		return nil, &Error{Op: "create user", Key: nu.Email, Message: "a role is required"}
	}
	body := inviteRequest{Email: nu.Email, FirstName: nu.FirstName, LastName: nu.LastName,
		ModuleID: nu.Role.ModuleID, RoleID: nu.Role.ID, IntegADSID: nu.ADSID}
	for round := 1; ; round++ {
		var w wireUser
		err := c.do(ctx, request{op: "create user", route: routeInvite, key: nu.Email, body: body, out: &w})
		if err == nil {
			if w.ID == 0 || !strings.EqualFold(w.Email, nu.Email) {
				return nil, &Error{Op: "create user", Key: nu.Email, Message: "the service's reply is not the user asked for, so whether it was created is unknown"}
			}
			u, err := c.user(ctx, w)
			if err != nil {
				return nil, err
			}
			return &u, nil
		}
		if !outcomeUnknown(err) || round >= 3 || ctx.Err() != nil {
			return nil, err
		}
		c.log.Info("asset panda user creation outcome unknown, looking the user up by email", "err", err)
		users, lerr := c.Users(ctx)
		if lerr != nil {
			return nil, &Error{Op: "create user", Key: nu.Email, Message: "outcome unknown and lookup by email failed",
				Retryable: true, Err: errors.Join(err, lerr)}
		}
		if u := EmailIndex(users)[strings.ToLower(nu.Email)]; u != nil {
			return u, nil
		}
	}
}

// UpdateUser changes names, email, AD SID, active flag and/or the role of
// user id, and returns the user as stored. A reply that is not that user,
// or does not carry every value the update set, is an error: the update
// is never reported applied on the strength of it.
func (c *Client) UpdateUser(ctx context.Context, id int, up UserUpdate) (*User, error) {
	var body userUpdateRequest
	body.User.FirstName, body.User.LastName, body.User.Email = up.FirstName, up.LastName, up.Email
	body.User.IsActive, body.User.IntegADSID = up.Active, up.ADSID
	if up.Role != nil {
		body.ModuleID, body.RoleID = up.Role.ModuleID, up.Role.ID
	}
	sid := strconv.Itoa(id)
	var w wireUser
	if err := c.do(ctx, request{op: "update user", route: routeUser, args: []string{sid}, key: sid, body: body, out: &w, idempotent: true}); err != nil {
		return nil, err
	}
	if miss := up.unshown(id, w); miss != "" {
		return nil, &Error{Op: "update user", Key: sid, Message: "the service's reply does not show the update applied (" + miss + ")"}
	}
	u, err := c.user(ctx, w)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// unshown says what of up the user w, the reply to updating user id, does
// not show; "" when it shows all of it.
func (up UserUpdate) unshown(id int, w wireUser) string {
	if w.ID != id {
		return "the reply is not user " + strconv.Itoa(id)
	}
	var miss []string
	str := func(key string, want *string, got string, fold bool) {
		if want != nil && got != *want && !(fold && strings.EqualFold(got, *want)) {
			miss = append(miss, key)
		}
	}
	str("email", up.Email, w.Email, true)
	str("first_name", up.FirstName, w.FirstName, false)
	str("last_name", up.LastName, w.LastName, false)
	sid := ""
	if w.IntegADSID != nil {
		sid = *w.IntegADSID
	}
	str("integ_ad_sid", up.ADSID, sid, false)
	if up.Active != nil && w.IsActive != *up.Active {
		miss = append(miss, "is_active")
	}
	if up.Role != nil && !slices.ContainsFunc(w.Roles, func(r wireUserRole) bool {
		return r.ModuleID == up.Role.ModuleID && r.RoleID == up.Role.ID
	}) {
		miss = append(miss, "role")
	}
	if len(miss) > 0 {
		return "it does not carry the " + strings.Join(miss, ", ") + " sent"
	}
	return ""
}

// DeactivateUser marks user id inactive (never deletes it).
func (c *Client) DeactivateUser(ctx context.Context, id int) (*User, error) {
	f := false
	return c.UpdateUser(ctx, id, UserUpdate{Active: &f})
}

// ReactivateUser marks user id active again.
func (c *Client) ReactivateUser(ctx context.Context, id int) (*User, error) {
	t := true
	return c.UpdateUser(ctx, id, UserUpdate{Active: &t})
}
