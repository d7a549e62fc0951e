package middleware

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/sessionkit/sessionkit"
)

// ProviderTransport is an http.RoundTripper that records provider access
// for every outbound request made with a session-bearing context, so an
// app's API client for a provider records access without code at each call:
//
//	schwab := &http.Client{Transport: middleware.ProviderTransport{Provider: "schwab"}}
//	req, _ := http.NewRequestWithContext(r.Context(), "GET", "https://api.schwabapi.com/...", nil)
//	resp, err := schwab.Do(req) // recorded for the session of r
//
// A request whose context has no session (a background job) is sent
// unrecorded. A request whose session can no longer be trusted is not sent:
// when the store is unavailable, the session was revoked, expired or went
// idle, or the provider name is invalid, RoundTrip returns an error that
// wraps the sessionkit error (errors.Is works through *url.Error). Other
// recording failures are logged, to the logger of the session's Manager
// (sessionkit.WithLogger), and the request is sent.
//
// The zero value records the request's host name as the provider and sends
// through http.DefaultTransport.
type ProviderTransport struct {
	// Base sends the request. Default: http.DefaultTransport.
	Base http.RoundTripper
	// Provider is the name recorded. Default: the request URL's host name.
	Provider string
}

// RoundTrip records the access, then sends req through Base.
func (t ProviderTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if _, ok := sessionkit.FromContext(ctx); ok {
		provider := t.Provider
		if provider == "" {
			provider = req.URL.Hostname()
		}
		if err := sessionkit.RecordProvider(ctx, provider); err != nil {
			if stops(err) {
				if req.Body != nil {
					req.Body.Close() // a RoundTripper closes the body, even on error
				}
				return nil, fmt.Errorf("sessionkit: provider access to %q not recorded: %w", provider, err)
			}
			logger(ctx).Warn("sessionkit: provider access not recorded", "provider", provider, "err", err)
		}
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}

// stops reports whether a recording failure must stop the request.
func stops(err error) bool {
	switch p := ProblemFor(err); {
	case p.Status == http.StatusUnauthorized, p.Status == http.StatusServiceUnavailable:
		return true
	}
	return errors.Is(err, sessionkit.ErrNotFound) || errors.Is(err, sessionkit.ErrInvalid)
}
