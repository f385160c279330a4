package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/service"
)

// defaultHealthURL is what `poller healthcheck` checks without --url or a config: the default
// server.listen on this host.
const defaultHealthURL = "http://127.0.0.1:9464/healthz"

// defaultHealthTimeout bounds the whole check: a process that does not answer within it is not
// healthy, and a container health check must not hang.
const defaultHealthTimeout = 5 * time.Second

// healthcheckCommand GETs /healthz of a local poller: exit ExitOK on 200, ExitFailure on anything
// else (no answer, refused, a non-200 status, a timeout), ExitUsage for bad usage or a bad config.
// It needs no shell, so it works as the health check of a distroless image.
func healthcheckCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	url, timeout, ok := healthcheckTarget(args, stderr)
	if !ok {
		return ExitUsage
	}
	if err := checkHealth(ctx, url, timeout); err != nil {
		fmt.Fprintf(stderr, "poller healthcheck: %s: unhealthy: %v\n", url, err)
		return ExitFailure
	}
	fmt.Fprintf(stdout, "%s: healthy\n", url)
	return ExitOK
}

// healthcheckTarget parses the flags into the URL to check and the timeout: --url, else the
// server.listen of --config (or $POLLER_CONFIG), else defaultHealthURL. Problems go to stderr.
func healthcheckTarget(args []string, stderr io.Writer) (url string, timeout time.Duration, ok bool) {
	fs := flag.NewFlagSet("poller healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urlFlag := fs.String("url", "", "URL to GET (default "+defaultHealthURL+", or server.listen of the config)")
	path := fs.String("config", os.Getenv("POLLER_CONFIG"), "config file whose server.listen to check (default $POLLER_CONFIG)")
	fs.DurationVar(&timeout, "timeout", defaultHealthTimeout, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return "", 0, false
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "poller healthcheck: unexpected argument %q\n", fs.Arg(0))
		return "", 0, false
	case explicit["url"] && explicit["config"]:
		fmt.Fprintln(stderr, "poller healthcheck: give --url or --config, not both")
		return "", 0, false
	case timeout <= 0:
		fmt.Fprintf(stderr, "poller healthcheck: --timeout must be positive, got %s\n", timeout)
		return "", 0, false
	case *urlFlag != "":
		return *urlFlag, timeout, true
	case *path == "":
		return defaultHealthURL, timeout, true
	}
	url, err := healthURLOf(*path)
	if err != nil {
		fmt.Fprintf(stderr, "poller healthcheck: %v\n", err)
		return "", 0, false
	}
	return url, timeout, true
}

// healthURLOf returns the /healthz URL of the poller that runs the config at path: server.listen,
// with an unspecified or empty host read as this host (127.0.0.1).
func healthURLOf(path string) (string, error) {
	cfg, err := config.Load(path, service.Registries())
	if err != nil {
		return "", fmt.Errorf("load config: %w", err)
	}
	if cfg.Server.Listen == "" {
		return "", fmt.Errorf("%s: server.listen is empty: that poller serves no /healthz", path)
	}
	host, port, err := net.SplitHostPort(cfg.Server.Listen)
	if err != nil {
		return "", fmt.Errorf("%s: server.listen %q: %w", path, cfg.Server.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}

// checkHealth GETs url within timeout and returns nil only for a 200 answer.
func checkHealth(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s", timeout)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return nil
}
