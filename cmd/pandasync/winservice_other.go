//go:build !windows

package main

// serviceSupported: Windows services exist only on Windows.
const serviceSupported = false

// runAsService reports that this process was not started by a Service
// Control Manager.
func runAsService(*app, []string) (handled bool, code int) { return false, 0 }

func serviceHost() (exe, programData, cwd string, err error) { return "", "", "", errNotWindows }

func installService(serviceConfig) error { return errNotWindows }

func uninstallService(string) error { return errNotWindows }
