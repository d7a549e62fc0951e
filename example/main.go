// Command example is a small web app on sessionkit: sign in as alice, bob,
// dave or carol, the support agent (password "password"), from several
// browsers, see every signed-in device on /devices with its location and
// last activity, and sign any of them out.
//
// Run it with
//
//	go run ./example
//
// With no REDIS_URL and no REDIS_CLUSTER_ADDRS it keeps sessions in an
// embedded in-memory Redis. Environment:
//
//	ADDR                  listen address (default :8080)
//	REDIS_URL             redis://[user:password@]host:port/db of one Redis 7+ server
//	REDIS_CLUSTER_ADDRS   comma-separated seed addresses of a Redis Cluster
//	GEOIP_DB              GeoIP2/GeoLite2 City or Country .mmdb file (none: no locations)
//	TRUSTED_PROXIES       comma-separated CIDR ranges of reverse proxies whose
//	                      X-Forwarded-For is believed (none by default)
//	INSECURE_DEV_COOKIES  1: send the session cookie without Secure, for browsers
//	                      that refuse Secure cookies on http://localhost; only
//	                      with ADDR on a loopback address
//	REFRESH_GRACE         how long a superseded refresh token still gets the
//	                      current pair back, a Go duration of at most 5m; 0s for
//	                      none (default 10s)
//
// GET /metrics serves the OpenTelemetry instruments to anyone who reaches
// ADDR: in a deployment, serve it on an internal address only.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sessionkit example:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sessionkit example:", err)
		os.Exit(1)
	}
	if err := run(ctx, cfg, ln, os.Stdout, log); err != nil {
		fmt.Fprintln(os.Stderr, "sessionkit example:", err)
		os.Exit(1)
	}
}

// shutdownTimeout bounds how long in-flight requests may take to finish
// after SIGINT or SIGTERM.
const shutdownTimeout = 10 * time.Second

// run serves the example on ln until ctx is done, then shuts down
// gracefully: it stops accepting connections, lets in-flight requests
// finish, flushes the Manager's hooks, and closes Redis.
func run(ctx context.Context, cfg config, ln net.Listener, stdout io.Writer, log *slog.Logger) (err error) {
	defer ln.Close()
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		err = errors.Join(err, a.Close(cctx))
	}()

	a.redis.banner(stdout)
	fmt.Fprintf(stdout, "sessionkit example: open %s and sign in as alice, bob, dave or carol (support), password %q\n", browseURL(ln.Addr()), "password")

	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("sessionkit example: shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// browseURL is the address to open in a browser: a wildcard listener is
// reachable as localhost.
func browseURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() || ip.IsLoopback() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
