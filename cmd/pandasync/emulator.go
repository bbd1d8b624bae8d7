package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pandasync/pandasync/examples"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
)

// emulatorArgs are the flags of `pandasync emulator`.
type emulatorArgs struct {
	listen      string
	seed        string
	rateLimit   int
	ratePer     time.Duration
	noRateLimit bool
	tokenTTL    time.Duration
}

func parseEmulatorArgs(a *app, args []string) (emulatorArgs, error) {
	var ea emulatorArgs
	fs := a.flags("emulator", "[-listen ADDR] [-seed FILE] [-rate-limit N -rate-per D | -no-rate-limit] [-token-ttl D]")
	fs.StringVar(&ea.listen, "listen", "127.0.0.1:8080", "`address` to serve on")
	fs.StringVar(&ea.seed, "seed", "", "seed `FILE` (names-based JSON); default: the demo seed built into pandasync")
	fs.IntVar(&ea.rateLimit, "rate-limit", 0, "requests allowed per -rate-per window (default: the seed's, else 400)")
	fs.DurationVar(&ea.ratePer, "rate-per", 0, "rate limit window (default: the seed's, else 180s)")
	fs.BoolVar(&ea.noRateLimit, "no-rate-limit", false, "switch the rate limit off")
	fs.DurationVar(&ea.tokenTTL, "token-ttl", 0, "lifetime of issued tokens (default 1h)")
	if err := parse(fs, args); err != nil {
		return ea, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(a.stderr, "emulator: unexpected argument %q\n", fs.Arg(0))
		return ea, errUsage
	}
	return ea, nil
}

func (a *app) emulator(ctx context.Context, args []string) error {
	ea, err := parseEmulatorArgs(a, args)
	if err != nil {
		return err
	}
	var r io.Reader
	if ea.seed == "" {
		f, err := examples.FS.Open(examples.DemoSeed)
		if err != nil {
			return fmt.Errorf("open built-in seed: %w", err)
		}
		defer f.Close()
		r = f
	} else {
		f, err := os.Open(ea.seed)
		if err != nil {
			return fmt.Errorf("open seed: %w", err)
		}
		defer f.Close()
		r = f
	}
	seed, err := emulator.LoadSeed(r)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	opts := emulator.Options{TokenTTL: ea.tokenTTL, Logger: a.log.With("component", "emulator")}
	switch {
	case ea.noRateLimit:
		opts.Rate = emulator.Rate{Requests: -1}
	case ea.rateLimit > 0 || ea.ratePer > 0:
		opts.Rate = emulator.Rate{Requests: ea.rateLimit, Per: ea.ratePer}
		if opts.Rate.Requests == 0 {
			opts.Rate.Requests = emulator.DefaultRateRequests
		}
		if opts.Rate.Per == 0 {
			opts.Rate.Per = emulator.DefaultRatePer
		}
	}
	e, err := emulator.New(seed, opts)
	if err != nil {
		return err
	}
	return emulator.ListenAndServe(ctx, ea.listen, e, func(url string) {
		fmt.Fprintf(a.stdout, "Asset Panda emulator listening on %s\n", url)
		fmt.Fprintf(a.stdout, "  state: %s/_emulator/state   stats: %s/_emulator/stats\n", url, url)
		fmt.Fprintln(a.stdout, "Press Ctrl-C to stop.")
	})
}
