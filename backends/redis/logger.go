package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// SetLogger sends go-redis's own log lines (failed dials, sentinel
// and cluster events, pool trouble) to logger, at level Warn, instead of
// go-redis's default logger, which writes to standard error. go-redis has
// one logger per process (goredis.SetLogger), so this applies to every
// go-redis client in the process, fragcache's and the application's, and
// the last call wins. A nil logger means slog.Default().
//
// Open calls it with Config.Logger when CACHE_OPTIONS sets
// "go_redis_logger" to true on a Redis backend.
func SetLogger(logger *slog.Logger) {
	if logger == nil {
		logger = slog.Default()
	}
	goredis.SetLogger(redisSlog{logger})
}

// redisSlog adapts a *slog.Logger to go-redis's logging interface.
type redisSlog struct{ l *slog.Logger }

func (r redisSlog) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	r.l.Log(ctx, slog.LevelWarn, "go-redis: "+strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// redisLoggerOption is the CACHE_OPTIONS key that makes Open route
// go-redis's log lines through Config.Logger.
const redisLoggerOption = "go_redis_logger"
