//go:build tools

// Package tools pins kube-apiserver and etcd so that .ci/kube-apiserver.sh can
// build them from the Go module proxy. It is never compiled into pandasync.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
