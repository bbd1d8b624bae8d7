package spec_test

import (
	"testing"

	"github.com/pandasync/pandasync/examples"
	"github.com/pandasync/pandasync/spec"
)

// TestEmbeddedExamples loads the example sets the way `pandasync demo` does,
// from the embedded file system.
func TestEmbeddedExamples(t *testing.T) {
	for _, dir := range []string{examples.DemoSpecDir, "production"} {
		set, err := spec.LoadFS(examples.FS, dir)
		if err != nil {
			t.Fatalf("LoadFS(examples.FS, %q):\n%v", dir, err)
		}
		if len(set.MappingNames()) != 3 {
			t.Errorf("LoadFS(examples.FS, %q) mappings = %q, want 3", dir, set.MappingNames())
		}
	}
}
