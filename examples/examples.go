// Package examples holds pandasync's example spec sets and the demo data,
// embedded so that `pandasync demo` needs nothing but the binary.
//
// The starter directory holds the commented spec set `pandasync init`
// writes.
//
// The demo directory holds the spec the demo runs (*.yaml), the directory it
// serves from an embedded LDAP server (directory.ldif) and the seed of the
// embedded Asset Panda emulator (assetpanda-seed.json). Tests load every
// example so that none of them rots.
package examples

import "embed"

// FS holds the example files, rooted at this directory: "demo/…",
// "starter/…" and the files directly in "production" (not the spec tests
// under production/tests, which `pandasync test` reads from disk).
//
//go:embed demo production/*.yaml starter
var FS embed.FS

// Paths of the demo data within FS.
const (
	DemoSpecDir   = "demo"
	DemoDirectory = "demo/directory.ldif"
	DemoSeed      = "demo/assetpanda-seed.json"
	// StarterDir holds the files `pandasync init` writes.
	StarterDir = "starter"
)
