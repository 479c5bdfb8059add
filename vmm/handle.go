package vmm

import (
	"nestvm/abi"
)

// Object is anything a handle can name.
type Object interface {
	// ObjectType reports the object's type, as handle_info returns it.
	ObjectType() abi.ObjectType
}

// handleEntry is one slot of a handle table.
type handleEntry struct {
	obj    Object
	rights abi.Rights
	badge  uint64
}

// handleTable maps a space's handle numbers to objects. Numbers are small
// integers local to the space (reference relativity): the same object has
// unrelated numbers in different spaces, and a number means nothing outside
// its table. Number 0 (abi.NoHandle) is never used.
type handleTable struct {
	slots []handleEntry // slots[0] stays empty
	free  []uint64
	count int
	limit int
}

func newHandleTable(limit int) handleTable {
	return handleTable{slots: make([]handleEntry, 1, 16), limit: limit}
}

// insert adds an entry and returns its number; ErrQuota when the table is
// at its limit.
func (t *handleTable) insert(e handleEntry) (uint64, abi.Error) {
	if t.count >= t.limit {
		return 0, abi.ErrQuota
	}
	t.count++
	if n := len(t.free); n > 0 {
		h := t.free[n-1]
		t.free = t.free[:n-1]
		t.slots[h] = e
		return h, abi.OK
	}
	t.slots = append(t.slots, e)
	return uint64(len(t.slots) - 1), abi.OK
}

// lookup returns a copy of entry h; false when h names nothing.
func (t *handleTable) lookup(h uint64) (handleEntry, bool) {
	if h == abi.NoHandle || h >= uint64(len(t.slots)) || t.slots[h].obj == nil {
		return handleEntry{}, false
	}
	return t.slots[h], true
}

// remove empties slot h; false when h names nothing.
func (t *handleTable) remove(h uint64) bool {
	if _, ok := t.lookup(h); !ok {
		return false
	}
	t.slots[h] = handleEntry{}
	t.free = append(t.free, h)
	t.count--
	return true
}
