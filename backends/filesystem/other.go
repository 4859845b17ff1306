//go:build !unix

package filesystem

// fsOpenFlags: without O_NONBLOCK and O_NOFOLLOW, entry files are opened
// plainly; Stat then refuses anything but a regular file before reading.
const fsOpenFlags = 0

func isReadOnlyFS(error) bool { return false }
