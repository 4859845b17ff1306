package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fragcache/fragcache/backends"
	_ "github.com/fragcache/fragcache/backends/all" // every CACHE_TYPE, as the application may use any
	"github.com/fragcache/fragcache/backends/redis"
)

// Exit statuses, as grep's: 1 is "nothing found", not a failure.
const (
	exitOK    = 0
	exitMiss  = 1
	exitError = 2
)

// errMiss makes a command exit with exitMiss; its message is printed.
var errMiss = errors.New("not found")

// usageError is a command line that cannot run; the usage follows it.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	// Every failure reaches the user as the command's error; go-redis's own
	// log lines (failed dials) would only repeat it.
	redis.SetLogger(slog.New(slog.DiscardHandler))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand: its flags are added to the common ones.
type command struct {
	args  string // argument synopsis
	help  string
	flags func(fs *flag.FlagSet, o *cmdOptions)
	run   func(ctx context.Context, e *env, o *cmdOptions, args []string) error
}

// cmdOptions holds every flag of every command; each command registers
// the ones it reads.
type cmdOptions struct {
	envPrefix       string
	timeout         time.Duration
	fragmentPrefix  string
	fragmentVersion string
	unambiguousKeys bool
	fragment        bool // get, del: arguments are NAME [VARY…]
	yes             bool // clear
	count           int  // ping
}

// env is what a command runs with.
type env struct {
	environ        []string
	stdout, stderr io.Writer
}

// fragmentFlag is the -fragment flag of get and del.
func fragmentFlag(fs *flag.FlagSet, o *cmdOptions) {
	fs.BoolVar(&o.fragment, "fragment", false, "the arguments are a cache block's name and vary_on values")
}

var commands = map[string]command{
	"get": {
		args:  "[-fragment] KEY | NAME [VARY…]",
		help:  "print the value stored under KEY (or the fragment NAME, VARY…)",
		flags: fragmentFlag,
		run:   runGet,
	},
	"del": {
		args:  "[-fragment] KEY… | NAME [VARY…]",
		help:  "delete the entries stored under the KEYs (or the fragment NAME, VARY…)",
		flags: fragmentFlag,
		run:   runDel,
	},
	"clear": {
		args: "-yes",
		help: "delete every entry under CACHE_KEY_PREFIX (everything in the database when it is empty)",
		flags: func(fs *flag.FlagSet, o *cmdOptions) {
			fs.BoolVar(&o.yes, "yes", false, "really clear")
		},
		run: runClear,
	},
	"stats": {
		help: "print the backend, its settings and its server's counters",
		run:  runStats,
	},
	"ping": {
		args: "[-count N]",
		help: "check that the backend answers and print the round trip's latency",
		flags: func(fs *flag.FlagSet, o *cmdOptions) {
			fs.IntVar(&o.count, "count", 1, "pings to send, one after another")
		},
		run: runPing,
	},
	"key": {
		args: "NAME [VARY…]",
		help: "print the key a cache block NAME with these vary_on values is stored under, CACHE_KEY_PREFIX included",
		run:  runKey,
	},
}

// commandOrder is the order of the usage text.
var commandOrder = []string{"get", "del", "clear", "stats", "ping", "key"}

// run is the whole program but for the process: it parses args, runs the
// command and returns the exit status.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitError
		}
		return exitOK
	}
	name := args[0]
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "fragcache: unknown command %q\n", name)
		usage(stderr)
		return exitError
	}
	var o cmdOptions
	fs := flag.NewFlagSet("fragcache "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.envPrefix, "env-prefix", "", "read the variables named `PREFIX`CACHE_… (the application's backends.EnvOptions.Prefix)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "bound of the whole command")
	fs.StringVar(&o.fragmentPrefix, "fragment-prefix", "", "the application's fragment.Options.KeyPrefix")
	fs.StringVar(&o.fragmentVersion, "fragment-version", "", "the application's fragment.Options.Version")
	fs.BoolVar(&o.unambiguousKeys, "unambiguous-keys", false, "the application sets fragment.Options.UnambiguousKeys")
	if cmd.flags != nil {
		cmd.flags(fs, &o)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: fragcache %s %s\n\n%s.\n\nflags:\n", name, cmd.args, cmd.help)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitError
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	err := cmd.run(ctx, &env{environ: environ, stdout: stdout, stderr: stderr}, &o, fs.Args())
	var uerr usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "fragcache %s: %v\n", name, err)
		fs.Usage()
		return exitError
	case errors.Is(err, errMiss):
		fmt.Fprintf(stderr, "fragcache %s: %v\n", name, err)
		return exitMiss
	default:
		fmt.Fprintf(stderr, "fragcache %s: %v\n", name, err)
		return exitError
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: fragcache COMMAND [flags] [arguments]\n\n")
	fmt.Fprintf(w, "Configured by the application's CACHE_* environment variables.\n\ncommands:\n")
	for _, name := range commandOrder {
		c := commands[name]
		fmt.Fprintf(w, "  %-6s %s\n         %s\n", name, c.args, c.help)
	}
	fmt.Fprintf(w, "\nRun fragcache COMMAND -h for a command's flags. Exit status: 0 done, 1 not found, 2 error.\n")
}

// config reads the CACHE_* settings from the environment, as the
// application does (with the application's prefix, if it uses one).
func (e *env) config(o *cmdOptions) (backends.Config, error) {
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := backends.FromEnv(e.environ, backends.EnvOptions{Prefix: o.envPrefix, Logger: logger})
	if err != nil {
		return cfg, err
	}
	cfg.Logger = logger
	cfg.NoNullWarning = true
	return cfg, nil
}

// open opens the configured cache. Commands that look at what the
// application stored refuse the in-process backends, which hold nothing
// another process can see.
func (e *env) open(o *cmdOptions, shared bool) (*backends.Cache, backends.Config, error) {
	cfg, err := e.config(o)
	if err != nil {
		return nil, cfg, err
	}
	switch strings.ToLower(cfg.Type) {
	case "", "null", "nullcache":
		if shared {
			return nil, cfg, fmt.Errorf("CACHE_TYPE is %q: NullCache stores nothing; set %sCACHE_TYPE (and its settings) as the application has them", cfg.Type, o.envPrefix)
		}
	case "simple", "simplecache":
		if shared {
			return nil, cfg, fmt.Errorf("CACHE_TYPE is %q: SimpleCache lives inside the application's process, which no other process can read", cfg.Type)
		}
	}
	cache, err := backends.Open(cfg)
	return cache, cfg, err
}
