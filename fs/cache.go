// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package fs

import (
	"sync"
	"time"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
)

// renderCache keeps each container's rendered files for a short time, so a
// container polling /proc/stat in a tight loop costs one render per TTL, not
// one per read. Entries are keyed by the container object, so no container
// ever sees another's text; a container re-resolved after its init changed
// is a new key.
type renderCache struct {
	ttl time.Duration

	mu      sync.Mutex
	entries map[cacheKey]cached
	puts    int
}

type cacheKey struct {
	c    *cgview.Container
	path string
}

type cached struct {
	data    []byte
	expires time.Time
}

func (rc *renderCache) get(c *cgview.Container, p string, now time.Time) ([]byte, bool) {
	if rc.ttl <= 0 {
		return nil, false
	}
	rc.mu.Lock()
	e, ok := rc.entries[cacheKey{c, p}]
	rc.mu.Unlock()
	if !ok || now.After(e.expires) {
		return nil, false
	}
	return e.data, true
}

func (rc *renderCache) put(c *cgview.Container, p string, data []byte, now time.Time) {
	if rc.ttl <= 0 {
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.entries == nil {
		rc.entries = map[cacheKey]cached{}
	}
	rc.entries[cacheKey{c, p}] = cached{data: data, expires: now.Add(rc.ttl)}
	rc.puts++
	if rc.puts%1024 == 0 { // amortized sweep keeps the map at live containers × files
		for k, e := range rc.entries {
			if now.After(e.expires) {
				delete(rc.entries, k)
			}
		}
	}
}
