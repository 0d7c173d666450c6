// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package fs

import (
	"fmt"
	"maps"
)

// State is what a successor needs of an FS to serve a connection the kernel
// already uses: the node IDs the kernel holds and the open handles with
// their snapshots. It is plain data, encoded as JSON by the upgrade package.
type State struct {
	// Nodes maps the node IDs handed to the kernel to their paths. IDs are a
	// hash of the path, so a successor computes the same ones; the table
	// carries the dynamic ones (per-CPU directories) it has not seen yet.
	Nodes map[uint64]string `json:"nodes"`
	// NextFh is the last file handle given out; handles are never reused.
	NextFh  uint64        `json:"nextFh"`
	Handles []HandleState `json:"handles"`
}

// HandleState is one open file or directory.
type HandleState struct {
	Fh   uint64        `json:"fh"`
	Data []byte        `json:"data,omitempty"` // a file's snapshot
	Dir  bool          `json:"dir,omitempty"`
	Ents []DirentState `json:"ents,omitempty"` // a directory's snapshot
}

// DirentState is one directory entry of a directory snapshot.
type DirentState struct {
	Name string `json:"name"`
	Mode uint32 `json:"mode"`
	ID   uint64 `json:"id"`
}

// ExportState returns the FS's state. Call it only while no request is being
// served (after Server.Quiesce), or the handle table may be stale.
func (f *FS) ExportState() State {
	st := State{}
	f.mu.RLock()
	st.Nodes = maps.Clone(f.paths)
	f.mu.RUnlock()
	f.hmu.Lock()
	defer f.hmu.Unlock()
	st.NextFh = f.nextFh
	st.Handles = make([]HandleState, 0, len(f.handles))
	for fh, h := range f.handles {
		hs := HandleState{Fh: fh, Data: h.data, Dir: h.ents != nil}
		for _, e := range h.ents {
			hs.Ents = append(hs.Ents, DirentState{Name: e.name, Mode: e.mode, ID: e.id})
		}
		st.Handles = append(st.Handles, hs)
	}
	return st
}

// ImportState adds a predecessor's state to a new FS, before it serves. A
// node ID that this version would give another path is an error: the
// successor must not serve the wrong file for an ID the kernel holds.
func (f *FS) ImportState(st State) error {
	f.mu.Lock()
	for id, p := range st.Nodes {
		if want := nodeID(p); want != id {
			f.mu.Unlock()
			return fmt.Errorf("fs: node %d is %q, which this version numbers %d", id, p, want)
		}
		if old, ok := f.paths[id]; ok && old != p {
			f.mu.Unlock()
			return fmt.Errorf("fs: node %d is %q here but %q in the predecessor", id, old, p)
		}
		f.paths[id] = p
	}
	f.mu.Unlock()
	f.hmu.Lock()
	defer f.hmu.Unlock()
	for _, hs := range st.Handles {
		if hs.Fh == 0 || hs.Fh > st.NextFh {
			return fmt.Errorf("fs: handle %d out of range (next %d)", hs.Fh, st.NextFh)
		}
		h := &handle{data: hs.Data}
		if hs.Dir {
			h.data = nil
			h.ents = make([]dirent, 0, len(hs.Ents))
			for _, e := range hs.Ents {
				h.ents = append(h.ents, dirent{name: e.Name, mode: e.Mode, id: e.ID})
			}
		}
		f.handles[hs.Fh] = h
	}
	f.nextFh = max(f.nextFh, st.NextFh)
	return nil
}
