//go:build !unix && !windows

package loop

import (
	"errors"
	"os"
)

// tryLock fails: this platform has no file lock pandasync can use.
func tryLock(*os.File) (bool, error) {
	return false, errors.New("file locks are not supported on this platform")
}

func unlock(*os.File) error { return nil }

func matchOwner(*os.File, string) {}
