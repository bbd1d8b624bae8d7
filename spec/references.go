package spec

import "fmt"

// CheckReferences resolves every {env: NAME} and {file: PATH} value of the
// Connection with r and returns a problem, with its file and line, for
// each one that cannot be read: a variable that is not set or empty, a
// file that is missing, unreadable or empty. Values are never included in
// the messages. Load does not do this: a spec may be validated where its
// secrets are not available.
func (s *Set) CheckReferences(r Resolver) Problems {
	c := s.Connection
	type ref struct {
		path string
		v    Value
	}
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
	var ps Problems
	for _, rf := range refs {
		if rf.v.IsZero() || rf.v.IsLiteral() {
			continue
		}
		if _, err := r.Resolve(rf.v); err != nil {
			ps = append(ps, Problem{File: c.File, Document: c.Document, Kind: KindConnection, Name: c.Metadata.Name,
				Path: rf.path, Line: c.LineOf(rf.path), Message: err.Error()})
		}
	}
	return ps
}
