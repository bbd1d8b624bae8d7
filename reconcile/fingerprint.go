package reconcile

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash"
	"slices"
	"sort"
	"strings"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/spec"
)

// fingerprint hashes the observed Asset Panda state a plan depends on, in a
// canonical order, so that apply can tell whether it changed since.
type fingerprint struct {
	h *hasher
}

func (f *fingerprint) hash() *hasher {
	if f.h == nil {
		f.h = newHasher()
	}
	return f.h
}

// hasher is SHA-256 over length-prefixed strings, so that no two sequences
// of strings hash alike, buffered so that small writes stay cheap.
type hasher struct {
	h   hash.Hash
	w   *bufio.Writer
	len [binary.MaxVarintLen64]byte
}

func newHasher() *hasher {
	h := sha256.New()
	return &hasher{h: h, w: bufio.NewWriterSize(h, 64<<10)}
}

func (h *hasher) str(s string) {
	n := binary.PutUvarint(h.len[:], uint64(len(s)))
	h.w.Write(h.len[:n])
	h.w.WriteString(s)
}

func (h *hasher) bool(b bool) {
	if b {
		h.w.WriteByte(1)
	} else {
		h.w.WriteByte(0)
	}
}

func (h *hasher) int(i int) {
	n := binary.PutVarint(h.len[:], int64(i))
	h.w.Write(h.len[:n])
}

func (h *hasher) sum() string {
	h.w.Flush()
	return "sha256:" + hex.EncodeToString(h.h.Sum(nil))
}

func (f *fingerprint) records(mapping string, st *collectionState) {
	h := f.hash()
	h.str("collection")
	h.str(mapping)
	for _, k := range sortedKeys(st.byKey) {
		r := st.byKey[k]
		h.str(r.id())
		h.bool(r.archived)
		// The fields the mapping reads, in name order: the others decide
		// nothing.
		h.int(len(st.order))
		for _, i := range st.order {
			h.str(st.fields[i])
			h.str(st.get(r, i))
		}
	}
	for _, k := range sortedKeys(st.conflicts) {
		h.str("conflict")
		h.str(k)
		for _, id := range st.conflicts[k] {
			h.str(id)
		}
	}
}

func (f *fingerprint) users(users []assetpanda.User) {
	h := f.hash()
	h.str("users")
	order := make([]int, len(users))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(i, j int) bool { return users[order[i]].ID < users[order[j]].ID })
	for _, i := range order {
		u := &users[i]
		h.int(u.ID)
		h.str(strings.ToLower(u.Email))
		h.str(u.FirstName)
		h.str(u.LastName)
		h.bool(u.Active)
		h.str(u.ADSID)
		rs := u.Roles
		if !sort.SliceIsSorted(rs, func(i, j int) bool { return rs[i].ModuleID < rs[j].ModuleID }) {
			rs = slices.Clone(rs)
			sort.Slice(rs, func(i, j int) bool { return rs[i].ModuleID < rs[j].ModuleID })
		}
		h.int(len(rs))
		for _, r := range rs {
			h.int(r.AccountID)
			h.int(r.ModuleID)
			h.int(r.RoleID)
		}
	}
}

func (f *fingerprint) sum() string { return f.hash().sum() }

// directoryDigest hashes what a plan read from AD: group membership and the
// members' attributes.
func directoryDigest(q activedirectory.Query, res *activedirectory.Result) string {
	h := newHasher()
	for _, gq := range q.Groups {
		g := res.Groups[gq.DN]
		h.str(gq.DN)
		if g == nil || !g.Exists {
			h.str("missing")
			continue
		}
		h.int(len(g.Members))
		for _, dn := range g.Members {
			h.str(dn)
			via := g.Via[dn]
			h.int(len(via))
			for _, v := range via {
				h.str(v)
			}
		}
	}
	// The members' data, in member order (each group's members are
	// sorted), so no sort of all users is needed.
	for _, gq := range q.Groups {
		g := res.Groups[gq.DN]
		if g == nil {
			continue
		}
		for _, dn := range g.Members {
			u := res.Users[dn]
			if u == nil {
				h.str("not a user")
				continue
			}
			h.str(u.SID)
			h.str(u.GUID)
			h.str(u.SAMAccountName)
			h.str(u.UPN)
			h.bool(u.Disabled)
			h.bool(u.Expired)
			// In query order, which is fixed for a spec.
			u.RangeAttrs(func(name string, values []string) {
				h.str(name)
				h.int(len(values))
				for _, v := range values {
					h.str(v)
				}
			})
		}
	}
	return h.sum()
}

// SpecDigest is the digest of what a spec set asks to read and plan (the
// Connection, the mappings, the limits and the suspend switch; not the
// runtime settings such as the schedule), as a plan's Prior.Spec holds it.
// pandasync run reads everything again when it changes.
func SpecDigest(set *spec.Set) string { return specDigest(set) }

// specDigest hashes the spec set (which holds references to secrets, never
// their values).
func specDigest(set *spec.Set) string {
	h := newHasher()
	for _, v := range []any{set.Connection.Spec, set.UserMappings, set.CollectionMappings, set.Policy.Spec.Limits, set.Policy.Spec.Suspend} {
		b, err := json.Marshal(v)
		if err != nil {
			h.str("unencodable: " + err.Error())
			continue
		}
		h.str(string(b))
	}
	return h.sum()
}
