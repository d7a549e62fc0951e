package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/google/uuid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// app is the example server: a Manager on Redis, the session middleware,
// the /sessions API and the pages.
type app struct {
	cfg      config
	log      *slog.Logger
	redis    *redisConn
	enricher *sessionkit.DefaultEnricher
	m        *sessionkit.Manager
	// auth authenticates the example's own routes and the /sessions API;
	// its refusals of a page request redirect to /login with the reason.
	auth    *middleware.Authenticator
	users   *users
	pages   *template.Template
	handler http.Handler
	// meters holds the Manager's instruments; metrics serves them.
	meters  *sdkmetric.MeterProvider
	metrics http.Handler
}

// newApp connects to Redis and builds the server. Close releases what it opened.
func newApp(ctx context.Context, cfg config, log *slog.Logger) (_ *app, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, users: demoUsers()}
	defer func() {
		if err != nil {
			a.Close(context.WithoutCancel(ctx))
		}
	}()
	if a.pages, err = template.New("").Funcs(templateFuncs).ParseFS(templateFS, "templates/*.html"); err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if a.redis, err = openRedis(ctx, cfg); err != nil {
		return nil, err
	}
	st, err := store.NewRedis(a.redis.client, store.Options{Prefix: cfg.prefix})
	if err != nil {
		return nil, err
	}
	if a.redis.embedded == nil { // miniredis has nothing to check
		warnings, err := st.Check(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.redis.desc, err)
		}
		for _, w := range warnings {
			log.Warn("sessionkit example: Redis is not set up safely for sessions", "warning", w)
		}
	}
	// The default enricher: device from the User-Agent, location from
	// GEOIP_DB when set (a file that cannot be opened fails here, at start-up).
	if a.enricher, err = sessionkit.NewEnricher(sessionkit.EnricherOptions{GeoIPPath: cfg.GeoIPPath, LookupTimeout: cfg.enrichBudget}); err != nil {
		return nil, fmt.Errorf("GEOIP_DB: %w", err)
	}
	if a.meters, a.metrics, err = newMetrics(); err != nil {
		return nil, err
	}
	opts := []sessionkit.Option{
		sessionkit.WithMeterProvider(a.meters),
		sessionkit.WithAuthenticationLatency(true), // the demo shows every instrument
		sessionkit.WithLimit(sessionTiers.Limit(a.users.tierOf)),
		sessionkit.WithLimitPolicy(a.users.limitPolicy),
		sessionkit.WithEnricher(a.enricher),
		sessionkit.WithHook(logEvent(log)),
		sessionkit.WithLogger(log),
	}
	if cfg.enrichBudget > 0 {
		opts = append(opts, sessionkit.WithEnrichTimeout(cfg.enrichBudget))
	}
	// API and mobile clients sign in at POST /sessions/token for an access
	// token and a refresh token. The demo makes a signing key at start-up;
	// a real deployment loads the same key on every instance, and rotates
	// it by putting a new one first (see sessionkit.AccessTokenOptions).
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("access token key: %w", err)
	}
	opts = append(opts, sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{
		SigningKeys: []crypto.Signer{key}, Issuer: "sessionkit-example", RefreshGrace: cfg.RefreshGrace,
	}))
	a.m, err = sessionkit.New(st, opts...)
	if err != nil {
		return nil, err
	}
	// One Authenticator for the pages and the /sessions API: one cookie,
	// one client-IP setting, and the Manager's logger for both.
	a.auth, err = middleware.NewAuthenticator(a.m, middleware.Options{
		AllowBearer:        true, // access tokens of API clients, beside the cookie
		TrustedProxies:     cfg.TrustedProxies,
		InsecureDevCookies: cfg.InsecureCookies,
		ErrorWriter:        a.pageError,
	})
	if err != nil {
		return nil, err
	}
	if a.handler, err = a.routes(); err != nil {
		return nil, err
	}
	return a, nil
}

// routes is the example's whole URL space.
func (a *app) routes() (http.Handler, error) {
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	// The JSON API of the HTTP contract, on the pages' Authenticator; its
	// errors stay problem JSON (see pageError).
	api, err := handlers.New(a.auth, handlers.Options{Login: a.apiLogin})
	if err != nil {
		return nil, err
	}
	// The operator routes (JSON, /admin/users/...) for support agents; the
	// support desk page below does the same from a browser.
	admin, err := handlers.NewAdmin(a.auth, handlers.AdminOptions{Authorize: a.authorizeSupport, ImpersonationTTL: supportSessionTTL})
	if err != nil {
		return nil, err
	}
	// Every state-changing form must come from this site's own pages.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.pageError(w, r, middleware.NewProblem(http.StatusForbidden, middleware.ReasonCrossOrigin,
			"The form was sent from another site."))
	}))
	page := func(h http.HandlerFunc) http.Handler { return a.auth.Middleware(h) }
	form := func(h http.Handler) http.Handler { return cop.Handler(h) }

	mux := http.NewServeMux()
	api.Mount(mux)
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(http.FileServerFS(static))))
	mux.HandleFunc("GET /{$}", a.home)
	mux.Handle("GET /metrics", a.metrics)
	mux.HandleFunc("GET /login", a.loginPage)
	mux.Handle("POST /login", form(http.HandlerFunc(a.login)))
	mux.Handle("GET /devices", page(a.devicesPage))
	mux.Handle("POST /devices/{id}/revoke", form(page(a.revokeDevice)))
	// A support session may not sign the user out everywhere.
	mux.Handle("POST /devices/revoke-others", form(a.auth.Middleware(a.auth.RequireNotImpersonated(http.HandlerFunc(a.revokeOthers)))))
	mux.Handle("POST /logout", form(page(a.logout)))
	// The support desk: the page at /admin exactly, its forms under
	// supportFormPrefix; the rest of /admin/ is the JSON admin API.
	// It acts on other users' accounts, so, like Vanguard's accounts, it
	// needs the agent's password entered recently: a stolen agent cookie
	// alone opens no one's account.
	admin.Mount(mux)
	recent := a.auth.RequireRecentAuth(a.cfg.reauthAge())
	desk := func(h http.HandlerFunc) http.Handler { return a.auth.Middleware(recent(h)) }
	mux.Handle("GET /admin", desk(a.supportPage))
	mux.Handle("POST "+supportFormPrefix+"users/{name}/sessions/{id}/revoke", form(desk(a.supportRevoke)))
	mux.Handle("POST "+supportFormPrefix+"users/{name}/revoke-all", form(desk(a.supportRevokeAll)))
	mux.Handle("POST "+supportFormPrefix+"users/{name}/impersonate", form(desk(a.supportImpersonate)))
	mux.Handle("GET /reauthenticate", page(a.reauthenticatePage))
	mux.Handle("POST /reauthenticate", form(page(a.reauthenticate)))
	// Provider access is recorded before the handler runs; a browser that
	// navigates here gets a page, an API client JSON. Vanguard is the
	// sensitive one: its accounts need the password entered within the last
	// 5 minutes (step-up), which /reauthenticate asks for again.
	accounts := middleware.RecordProviderFromPath("name", middleware.ProviderOptions{ErrorWriter: a.pageError})(
		http.HandlerFunc(a.providerAccounts))
	sensitive := a.auth.RequireRecentAuth(a.cfg.reauthAge())(accounts)
	mux.Handle("GET /providers/{name}/accounts", page(func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") == "vanguard" {
			sensitive.ServeHTTP(w, r)
			return
		}
		accounts.ServeHTTP(w, r)
	}))
	return securityHeaders(mux), nil
}

// apiLogin is the credential check of POST /sessions.
func (a *app) apiLogin(r *http.Request) (uuid.UUID, error) {
	name, password, err := handlers.Credentials(r)
	if err != nil {
		return uuid.Nil, err
	}
	usr, ok := a.users.check(name, password)
	if !ok {
		return uuid.Nil, handlers.ErrBadCredentials
	}
	return usr.ID, nil
}

// Close shuts the Manager down (flushing queued hook calls, bounded by
// ctx), then the GeoIP database and Redis.
func (a *app) Close(ctx context.Context) error {
	var errs []error
	if a.m != nil {
		errs = append(errs, a.m.Close(ctx))
	}
	if a.meters != nil {
		errs = append(errs, a.meters.Shutdown(ctx))
	}
	if a.enricher != nil {
		errs = append(errs, a.enricher.Close())
	}
	if a.redis != nil {
		errs = append(errs, a.redis.Close())
	}
	return errors.Join(errs...)
}

// logEvent is a sessionkit hook that logs every session event. Apps hang
// alerts and metrics on the same hook: a sign-in from a new country, say.
func logEvent(log *slog.Logger) sessionkit.Hook {
	return func(ctx context.Context, e sessionkit.Event) {
		attrs := []any{"event", string(e.Type), "session_id", e.SessionID.String(), "user_id", e.UserID.String()}
		if e.Reason != "" {
			attrs = append(attrs, "reason", e.Reason)
		}
		if e.Provider != "" {
			attrs = append(attrs, "provider", e.Provider)
		}
		level := slog.LevelInfo
		if e.NewCountry {
			level = slog.LevelWarn
			attrs = append(attrs, "new_country", e.Country)
		}
		log.Log(ctx, level, "sessionkit example: session event", attrs...)
	}
}

// securityHeaders sets the headers every response of the example carries:
// no scripts at all, no framing, no referrer to other sites.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// cacheFor lets browsers keep the stylesheet for an hour.
func cacheFor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}
