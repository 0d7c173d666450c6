module github.com/k8s-lxcfs/k8s-lxcfs

go 1.26.8

require (
	github.com/containerd/cgroups/v3 v3.1.3
	github.com/go-logr/logr v1.4.4
	github.com/hanwen/go-fuse/v2 v2.12.1
	github.com/moby/sys/mountinfo v0.7.3
	golang.org/x/sys v0.50.0
)

require (
	github.com/moby/sys/userns v0.1.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
)
