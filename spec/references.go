package spec

import "fmt"

// CheckReferences resolves every {env: NAME} and {file: PATH} value of the
// Connection and the SyncPolicy (webhook URLs, the admin token) with r and
// returns a problem, with its file and line, for each one that cannot be
// read: a variable that is not set or empty, a file that is missing,
// unreadable or empty. Values are never included in the messages. Load
// does not do this: a spec may be validated where its secrets are not
// available.
func (s *Set) CheckReferences(r Resolver) Problems {
	ps := s.Connection.checkReferences(r)
	return append(ps, s.Policy.checkReferences(r)...)
}

// ref is a Value and its field path.
type ref struct {
	path string
	v    Value
}

// resolveRefs resolves refs of the document at src.
func resolveRefs(r Resolver, src Source, kind, name string, refs []ref) Problems {
	var ps Problems
	for _, rf := range refs {
		if rf.v.IsZero() || rf.v.IsLiteral() {
			continue
		}
		if _, err := r.Resolve(rf.v); err != nil {
			ps = append(ps, Problem{File: src.File, Document: src.Document, Kind: kind, Name: name,
				Path: rf.path, Line: src.LineOf(rf.path), Message: err.Error()})
		}
	}
	return ps
}

func (p SyncPolicy) checkReferences(r Resolver) Problems {
	var refs []ref
	for i, w := range p.Spec.Webhooks {
		refs = append(refs, ref{fmt.Sprintf("spec.webhooks[%d].url", i), w.URL})
	}
	refs = append(refs, ref{"spec.admin.token", p.Spec.Admin.Token})
	return resolveRefs(r, p.Source, KindSyncPolicy, p.Metadata.Name, refs)
}

func (c Connection) checkReferences(r Resolver) Problems {
	d, a := c.Spec.Directory, c.Spec.AssetPanda
	var refs []ref
	for i, u := range d.URLs {
		refs = append(refs, ref{fmt.Sprintf("spec.directory.urls[%d]", i), u})
	}
	refs = append(refs,
		ref{"spec.directory.baseDN", d.BaseDN},
		ref{"spec.directory.bindDN", d.BindDN},
		ref{"spec.directory.password", d.Password},
		ref{"spec.directory.caFile", d.CAFile},
		ref{"spec.assetPanda.url", a.URL},
		ref{"spec.assetPanda.clientID", a.ClientID},
		ref{"spec.assetPanda.clientSecret", a.ClientSecret},
		ref{"spec.assetPanda.email", a.Email},
		ref{"spec.assetPanda.password", a.Password},
	)
	return resolveRefs(r, c.Source, KindConnection, c.Metadata.Name, refs)
}
