package testkit

import "runtime"

// Retained returns how much more live heap there is after f than before,
// both measured after a collection.
func Retained(f func()) int64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc)
}

// Allocated returns the bytes the heap allocated while f ran. Callers run
// it where no other goroutine allocates (sequential tests, fuzz workers).
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// DecodeBudget is what decoding n stored bytes may allocate, whatever they
// are: the bound README's security section states.
func DecodeBudget(n int) uint64 { return 64<<10 + 64*uint64(n) }
