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
// sends concurrently). As SetMany, it refuses values over MaxValueSize by
// key and makes the near cache forget the keys it wrote.
func (r *Backend) SetEntries(ctx context.Context, entries []backends.Entry) error {
	if err := r.ready(); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	if r.near != nil {
		defer func() {
			for _, e := range entries {
				r.near.forget(e.Key)
			}
		}()
	}
	var errs []error
	keys := make([]string, 0, len(entries))
	cmds := make([]*redis.StatusCmd, 0, len(entries))
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range entries {
			if err := r.checkSize(e.Value); err != nil {
				errs = append(errs, &backends.KeyError{Key: e.Key, Err: err})
				continue
			}
			cmd := redis.NewStatusCmd(ctx, setArgs(e.Key, e.Value, false, e.TTL)...)
			_ = p.Process(ctx, cmd)
			keys = append(keys, e.Key)
			cmds = append(cmds, cmd)
		}
		return nil
	})
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			errs = append(errs, &backends.KeyError{Key: keys[i], Err: redisError("SET", err)})
		}
	}
	return errors.Join(errs...)
}
