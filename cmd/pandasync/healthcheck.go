package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// healthcheck is `pandasync healthcheck`: a probe for images without a
// shell or curl (Docker's HEALTHCHECK, a Kubernetes exec probe). It GETs
// the URL and exits 0 on a 2xx answer, 1 otherwise.
func (a *app) healthcheck(ctx context.Context, args []string) error {
	fs := a.flags("healthcheck", "[-url URL] [-timeout DURATION]")
	target := fs.String("url", "http://"+defaultListen+"/healthz", "`URL` to ask: /healthz (alive) or /readyz (ready)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after `DURATION`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(a.stderr, "healthcheck: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	u, err := url.Parse(*target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(a.stderr, "healthcheck: -url %q: want an http:// or https:// URL\n", *target)
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	text := strings.TrimSpace(string(body))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("healthcheck: %s answered %s: %s", u.Redacted(), resp.Status, text)
	}
	fmt.Fprintf(a.stdout, "%s: %s\n", u.Redacted(), text)
	return nil
}
