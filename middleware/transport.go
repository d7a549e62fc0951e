package middleware

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"

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
// unrecorded. The call is recorded whatever site the inbound request came
// from, since it is made: a route another site must not be able to make
// call a provider belongs behind RecordProvider, which refuses cross-site
// requests. A request whose session can no longer be trusted is not sent:
// when the store is unavailable, the session was revoked, expired or went
// idle, or the provider name is invalid, RoundTrip returns an error that
// wraps the sessionkit error (errors.Is works through *url.Error). Other
// recording failures are logged, to the logger of the session's Manager
// (sessionkit.WithLogger), and the request is sent.
//
// The zero value records the request's host name as the provider and sends
// through http.DefaultTransport. The host name is made a valid provider
// name: lower case, every byte other than a letter, digit, '-', '_' or '.'
// (an IPv6 literal's colons, a zone's '%') made '-', and of a name longer
// than 64 bytes the labels that end it within 64 kept
// ("aaa.bbb.schwabapi.com" keeps "bbb.schwabapi.com"), so that no host
// stops a request.
type ProviderTransport struct {
	// Base sends the request. Default: http.DefaultTransport.
	Base http.RoundTripper
	// Provider is the name recorded, 1 to 64 bytes of letters, digits,
	// '-', '_' and '.'; a request with any other is not sent. Default: the
	// request URL's host name, made such a name.
	Provider string
}

// RoundTrip records the access, then sends req through Base.
func (t ProviderTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if _, ok := sessionkit.FromContext(ctx); ok {
		provider := t.Provider
		if provider == "" {
			provider = hostProvider(req.URL.Hostname())
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

// maxHostProvider is the longest provider name (sessionkit's bound).
const maxHostProvider = 64

// hostProvider makes host a provider name (see ProviderTransport).
func hostProvider(host string) string {
	b := []byte(strings.ToLower(host))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			b[i] = '-'
		}
	}
	if len(b) > maxHostProvider {
		b = b[len(b)-maxHostProvider:]
		if dot := bytes.IndexByte(b, '.'); dot >= 0 && dot < len(b)-1 {
			b = b[dot+1:]
		}
	}
	return string(b)
}

// stops reports whether a recording failure must stop the request.
func stops(err error) bool {
	switch p := ProblemFor(err); {
	case p.Status == http.StatusUnauthorized, p.Status == http.StatusServiceUnavailable:
		return true
	}
	return errors.Is(err, sessionkit.ErrNotFound) || errors.Is(err, sessionkit.ErrInvalid)
}
