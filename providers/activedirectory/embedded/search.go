package embedded

import (
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// valueRange is an explicit name;range=lo-hi request; hi < 0 means "*".
type valueRange struct{ lo, hi int }

// selection is the parsed attribute list of a search request.
type selection struct {
	all    bool                  // "*" or an empty list
	admin  bool                  // ignore x-embedded-hidden-attribute (Server.Entry)
	names  map[string]bool       // lower-case names requested plainly
	ranges map[string]valueRange // lower-case names requested with ;range=
}

func parseSelection(attrs []string) selection {
	sel := selection{all: len(attrs) == 0}
	for _, a := range attrs {
		switch a {
		case "*":
			sel.all = true
			continue
		case "1.1", "+", "":
			continue
		}
		name, opts, _ := strings.Cut(a, ";")
		lname := strings.ToLower(name)
		if r, ok := parseRange(opts); ok {
			if sel.ranges == nil {
				sel.ranges = make(map[string]valueRange)
			}
			sel.ranges[lname] = r
			continue
		}
		if sel.names == nil {
			sel.names = make(map[string]bool)
		}
		sel.names[lname] = true
	}
	return sel
}

// parseRange parses the options part "range=lo-hi" or "range=lo-*".
func parseRange(opts string) (valueRange, bool) {
	for _, o := range strings.Split(opts, ";") {
		spec, ok := strings.CutPrefix(strings.ToLower(o), "range=")
		if !ok {
			continue
		}
		los, his, ok := strings.Cut(spec, "-")
		if !ok {
			return valueRange{}, false
		}
		lo, err := strconv.Atoi(los)
		if err != nil || lo < 0 {
			return valueRange{}, false
		}
		if his == "*" {
			return valueRange{lo: lo, hi: -1}, true
		}
		hi, err := strconv.Atoi(his)
		if err != nil || hi < lo {
			return valueRange{}, false
		}
		return valueRange{lo: lo, hi: hi}, true
	}
	return valueRange{}, false
}

// render selects and shapes the attributes of e for the wire (AD ranging
// included). It runs under the read lock.
func (d *directory) render(e *entry, sel selection, maxVal int, typesOnly bool) []outAttr {
	return d.renderCounting(e, sel, maxVal, typesOnly, nil)
}

// renderCounting is render that also adds to *ranged (when not nil) the
// number of attributes returned ranged.
func (d *directory) renderCounting(e *entry, sel selection, maxVal int, typesOnly bool, ranged *int) []outAttr {
	out := make([]outAttr, 0, len(e.attrs)+1)
	emit := func(name, lname string, vals []string) {
		if len(vals) == 0 || !sel.admin && e.attrHidden(lname) {
			return
		}
		r, hasRange := sel.ranges[lname]
		if !hasRange && !sel.all && !sel.names[lname] {
			return
		}
		switch {
		case hasRange:
			out = append(out, rangeSlice(name, vals, r, maxVal))
			if ranged != nil {
				*ranged++
			}
		case maxVal > 0 && len(vals) > maxVal:
			// AD: an empty plain attribute plus the first slice.
			out = append(out, outAttr{name: name},
				outAttr{name: name + ";range=0-" + strconv.Itoa(maxVal-1), vals: vals[:maxVal]})
			if ranged != nil {
				*ranged++
			}
		default:
			out = append(out, outAttr{name: name, vals: vals})
		}
	}
	for _, a := range e.attrs {
		emit(a.name, a.lname, a.vals)
	}
	emit("memberOf", "memberof", d.memberOfValues(e))
	if typesOnly {
		for i := range out {
			out[i].vals = nil
		}
	}
	return out
}

// rangeSlice answers an explicit ranged request; the last slice ends in "*".
func rangeSlice(name string, vals []string, r valueRange, maxVal int) outAttr {
	n := len(vals)
	if r.lo >= n {
		return outAttr{name: name + ";range=" + strconv.Itoa(r.lo) + "-*"}
	}
	end := n - 1
	if r.hi >= 0 && r.hi < end {
		end = r.hi
	}
	if maxVal > 0 && end-r.lo+1 > maxVal {
		end = r.lo + maxVal - 1
	}
	hi := strconv.Itoa(end)
	if end == n-1 {
		hi = "*"
	}
	return outAttr{name: name + ";range=" + strconv.Itoa(r.lo) + "-" + hi, vals: vals[r.lo : end+1]}
}

// find returns the entries in scope that match, in directory order. It runs
// under the read lock.
//
// Tombstones (and CN=Deleted Objects) are returned only when showDeleted
// is set, and deleted objects only when tombstones is also set (the bind
// account may read them); without it AD and Samba show a plain account
// the container and nothing in it.
func (d *directory) find(baseNorm string, scope int64, m matcher, showDeleted, tombstones bool) ([]*entry, error) {
	if baseNorm != "" {
		if b, ok := d.byNorm[baseNorm]; !ok || b.hidden || b.tombstone && !showDeleted {
			return nil, &resultError{code: ldap.LDAPResultNoSuchObject,
				msg: "0000208D: NameErr: DSID-03100241, problem 2001 (NO_OBJECT), data 0, best match of:\n\t'" + d.base + "'\n"}
		}
	}
	inConfig := baseNorm == d.configNorm || strings.HasSuffix(baseNorm, ","+d.configNorm)
	suffix := "," + baseNorm
	var out []*entry
	for _, e := range d.entries {
		if e.config != inConfig || e.hidden {
			continue
		}
		if e.tombstone && (!showDeleted || !tombstones && e.norm != baseNorm && e.dn != d.deletedDN) {
			continue
		}
		switch scope {
		case int64(ldap.ScopeBaseObject):
			if e.norm != baseNorm {
				continue
			}
		case int64(ldap.ScopeSingleLevel):
			if e.parent != baseNorm {
				continue
			}
		default:
			if baseNorm != "" && e.norm != baseNorm && !strings.HasSuffix(e.norm, suffix) {
				continue
			}
		}
		if m(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// rootDSE builds the rootDSE entry.
func (d *directory) rootDSE() *entry {
	e := &entry{}
	set := func(name string, vals ...string) { e.set(name, vals) }
	set("objectClass", "top")
	set("defaultNamingContext", d.base)
	set("rootDomainNamingContext", d.base)
	set("configurationNamingContext", "CN=Configuration,"+d.base)
	set("schemaNamingContext", "CN=Schema,CN=Configuration,"+d.base)
	set("subschemaSubentry", subschemaRDN+d.base)
	set("namingContexts", d.base, "CN=Configuration,"+d.base, "CN=Schema,CN=Configuration,"+d.base)
	set("dsServiceName", d.serviceDN())
	set("serverName", "CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,"+d.base)
	set("dnsHostName", d.hostName)
	set("ldapServiceName", d.realm+":dc1$@"+strings.ToUpper(d.realm))
	set("highestCommittedUSN", strconv.FormatInt(d.usn, 10))
	set("isSynchronized", "TRUE")
	set("isGlobalCatalogReady", "FALSE")
	set("supportedLDAPVersion", "3")
	set("supportedControl", pagingOID, showDeletedOID)
	set("supportedCapabilities", "1.2.840.113556.1.4.800")
	set("supportedSASLMechanisms")
	set("domainFunctionality", "4")
	set("forestFunctionality", "4")
	set("domainControllerFunctionality", "4")
	return e
}
