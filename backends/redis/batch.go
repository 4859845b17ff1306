package redis

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/fragcache/fragcache/backends"
)

var _ backends.Batcher = (*Backend)(nil)

// SetEntries sends one SET per entry, each with its own PX, in one
// pipeline: one round trip (one per node on a cluster, which go-redis
// sends concurrently).
func (r *Backend) SetEntries(ctx context.Context, entries []backends.Entry) error {
	if err := r.ready(); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	cmds := make([]*redis.StatusCmd, len(entries))
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, e := range entries {
			cmds[i] = redis.NewStatusCmd(ctx, setArgs(e.Key, e.Value, false, e.TTL)...)
			_ = p.Process(ctx, cmds[i])
		}
		return nil
	})
	var errs []error
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			errs = append(errs, &backends.KeyError{Key: entries[i].Key, Err: redisError("SET", err)})
		}
	}
	return errors.Join(errs...)
}
