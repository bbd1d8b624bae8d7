package assetpanda

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Collection is a collection (an API "group") of a module, with its fields.
type Collection struct {
	ID        int
	Account   string
	Module    string
	Name      string
	AccountID int
	ModuleID  int
	Fields    []Field
}

// Field is a field of a collection. Key is the API's "field_N" key; Type is
// text, number, date, boolean or list (single-select with Options).
type Field struct {
	ID       int
	Key      string
	Name     string
	Type     string
	Unique   bool
	Required bool
	Options  []Option
}

// Option is a choice of a single-select field.
type Option struct {
	ID   int
	Name string
}

// Role is a role of a module.
type Role struct {
	ID        int
	Account   string
	Module    string
	Name      string
	AccountID int
	ModuleID  int
}

// Permissions are what the API client may do (from GET /v3/users/me).
type Permissions struct {
	Read, Write, CreateUsers bool
}

// Field returns the field called name; the error names the fields that exist.
func (c *Collection) Field(name string) (*Field, error) {
	names := make([]string, 0, len(c.Fields))
	for i := range c.Fields {
		if c.Fields[i].Name == name {
			return &c.Fields[i], nil
		}
		names = append(names, c.Fields[i].Name)
	}
	return nil, &NotFoundError{Kind: "field", Name: name, Parent: fmt.Sprintf("collection %q", c.Name), Have: names}
}

// Option returns the option called name (case-insensitive); the error names
// the options that exist.
func (f *Field) Option(name string) (*Option, error) {
	names := make([]string, 0, len(f.Options))
	for i := range f.Options {
		if f.Options[i].Name == name {
			return &f.Options[i], nil
		}
		names = append(names, f.Options[i].Name)
	}
	for i := range f.Options {
		if strings.EqualFold(f.Options[i].Name, name) {
			return &f.Options[i], nil
		}
	}
	return nil, &NotFoundError{Kind: "option", Name: name, Parent: fmt.Sprintf("field %q", f.Name), Have: names}
}

func (f *Field) optionByID(id int) *Option {
	for i := range f.Options {
		if f.Options[i].ID == id {
			return &f.Options[i]
		}
	}
	return nil
}

// pick finds want among n items by name: an exact match first, else the
// only case-insensitive match. It returns the index or -1, and all names.
func pick(n int, name func(int) string, want string) (int, []string) {
	names := make([]string, n)
	fold := -1
	folds := 0
	for i := range n {
		names[i] = name(i)
		if names[i] == want {
			return i, names
		}
		if strings.EqualFold(names[i], want) {
			fold = i
			folds++
		}
	}
	if folds == 1 {
		return fold, names
	}
	return -1, names
}

func (c *Client) loadAccounts(ctx context.Context) ([]wireAccount, error) {
	c.mu.Lock()
	accs := c.accounts
	c.mu.Unlock()
	if accs != nil {
		return accs, nil
	}
	var out []wireAccount
	if err := c.do(ctx, request{op: "list accounts", route: routeAccounts, out: &out, idempotent: true}); err != nil {
		return nil, err
	}
	if out == nil {
		out = []wireAccount{}
	}
	c.mu.Lock()
	c.accounts = out
	c.mu.Unlock()
	return out, nil
}

// module resolves an account and module by name.
func (c *Client) module(ctx context.Context, account, module string) (wireAccount, wireModule, error) {
	accs, err := c.loadAccounts(ctx)
	if err != nil {
		return wireAccount{}, wireModule{}, err
	}
	i, names := pick(len(accs), func(i int) string { return accs[i].Name }, account)
	if i < 0 {
		return wireAccount{}, wireModule{}, &NotFoundError{Kind: "account", Name: account, Have: names}
	}
	a := accs[i]
	j, names := pick(len(a.Modules), func(j int) string { return a.Modules[j].Name }, module)
	if j < 0 {
		return wireAccount{}, wireModule{}, &NotFoundError{Kind: "module", Name: module, Parent: fmt.Sprintf("account %q", a.Name), Have: names}
	}
	return a, a.Modules[j], nil
}

func (c *Client) moduleRoles(ctx context.Context, moduleID int) ([]wireRole, error) {
	c.mu.Lock()
	rs, ok := c.roles[moduleID]
	c.mu.Unlock()
	if ok {
		return rs, nil
	}
	q := url.Values{qModuleID: {strconv.Itoa(moduleID)}}
	if err := c.do(ctx, request{op: "list roles", route: routeRoles, query: q, out: &rs, idempotent: true}); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.roles[moduleID] = rs
	c.mu.Unlock()
	return rs, nil
}

// Role looks a role up by account, module and role name.
func (c *Client) Role(ctx context.Context, account, module, role string) (*Role, error) {
	a, m, err := c.module(ctx, account, module)
	if err != nil {
		return nil, err
	}
	rs, err := c.moduleRoles(ctx, m.ID)
	if err != nil {
		return nil, err
	}
	i, names := pick(len(rs), func(i int) string { return rs[i].Name }, role)
	if i < 0 {
		return nil, &NotFoundError{Kind: "role", Name: role, Parent: fmt.Sprintf("module %q of account %q", m.Name, a.Name), Have: names}
	}
	return &Role{ID: rs[i].ID, Name: rs[i].Name, Account: a.Name, Module: m.Name, AccountID: a.ID, ModuleID: m.ID}, nil
}

// Collection looks a collection and its fields up by account, module and
// collection name. The result is cached for the client's lifetime and must
// not be modified.
func (c *Client) Collection(ctx context.Context, account, module, collection string) (*Collection, error) {
	a, m, err := c.module(ctx, account, module)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	gs, ok := c.groups[m.ID]
	c.mu.Unlock()
	if !ok {
		var resp wireGroups
		q := url.Values{qModuleID: {strconv.Itoa(m.ID)}}
		if err := c.do(ctx, request{op: "list collections", route: routeGroups, query: q, out: &resp, idempotent: true}); err != nil {
			return nil, err
		}
		gs = resp.Groups
		c.mu.Lock()
		c.groups[m.ID] = gs
		c.mu.Unlock()
	}
	i, names := pick(len(gs), func(i int) string { return gs[i].Name }, collection)
	if i < 0 {
		return nil, &NotFoundError{Kind: "collection", Name: collection, Parent: fmt.Sprintf("module %q of account %q", m.Name, a.Name), Have: names}
	}
	g := gs[i]
	cacheKey := strconv.Itoa(g.ID)
	c.mu.Lock()
	col := c.cols[cacheKey]
	c.mu.Unlock()
	if col != nil {
		return col, nil
	}
	var fr wireFields
	id := strconv.Itoa(g.ID)
	if err := c.do(ctx, request{op: "list fields", route: routeFields, args: []string{id}, key: g.Name, out: &fr, idempotent: true}); err != nil {
		return nil, err
	}
	col = &Collection{ID: g.ID, Name: g.Name, Account: a.Name, Module: m.Name, AccountID: a.ID, ModuleID: m.ID}
	for _, wf := range fr.Fields {
		f := Field{ID: wf.ID, Key: wf.Key, Name: wf.Name, Type: wf.Type, Unique: wf.Unique, Required: wf.IsRequired}
		for _, o := range wf.Options {
			f.Options = append(f.Options, Option{ID: o.ID, Name: o.Name})
		}
		col.Fields = append(col.Fields, f)
	}
	c.mu.Lock()
	c.cols[cacheKey] = col
	c.mu.Unlock()
	return col, nil
}

// Permissions reports what the API client may do, without writing
// anything: check commands use it to say "user creation not granted".
func (c *Client) Permissions(ctx context.Context) (Permissions, error) {
	var me wireMe
	if err := c.do(ctx, request{op: "read own permissions", route: routeMe, out: &me, idempotent: true}); err != nil {
		return Permissions{}, err
	}
	p := me.Permissions
	return Permissions{Read: p.Read, Write: p.Write, CreateUsers: p.CreateUsers}, nil
}
