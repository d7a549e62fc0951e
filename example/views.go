package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
)

// timelineLength is how many audit events the devices page shows.
const timelineLength = 12

// devicesView is what devices.html renders.
type devicesView struct {
	User      *user
	Limit     int // sessions the user's tier allows
	Devices   []deviceView
	Counted   int // devices that count toward the limit (not support sessions)
	Others    int // active sessions besides this one
	Events    []eventView
	Providers []providerLink
	Notice    string
	// SupportBy is the operator who opened this browser's session as the
	// user (a support session), shown in a banner; empty otherwise.
	SupportBy string
}

// deviceView is one active session as the page shows it.
type deviceView struct {
	ID         string
	Label      string
	Mobile     bool
	Location   string
	IP         string
	FirstIP    string // the sign-in address, when it differs from IP
	IPChanges  int
	Created    stamp
	LastActive stamp
	Providers  []string // display names, most recent first
	LastAccess stamp    // of the most recent provider, when any
	Current    bool
	APIClient  bool   // a bearer session: an app holding tokens, not a browser cookie
	Support    string // the operator of a support session (Session.ImpersonatedBy)

	lastActive time.Time
}

// stamp is a time shown as "2 minutes ago", with the exact time as a tooltip.
type stamp struct {
	Rel, Abs, ISO string
}

func newStamp(t, now time.Time) stamp {
	if t.IsZero() {
		return stamp{}
	}
	return stamp{Rel: relTime(t, now), Abs: t.UTC().Format("2 Jan 2006, 15:04 MST"), ISO: t.UTC().Format(time.RFC3339)}
}

// eventView is one entry of the audit timeline.
type eventView struct {
	Kind   string // CSS modifier: in, out, warn, info
	Text   string
	Device string
	This   bool // the event is about this browser's session
	When   stamp
}

// providerLink is a demo provider the page offers to load accounts from.
type providerLink struct {
	Name, Display string
}

// demoProviders are the providers offered on the devices page.
var demoProviders = []providerLink{{"schwab", "Schwab"}, {"fidelity", "Fidelity"}, {"vanguard", "Vanguard"}}

func buildDevicesView(usr *user, current uuid.UUID, sessions []sessionkit.Session, events []sessionkit.Event, now time.Time) devicesView {
	v := devicesView{User: usr, Limit: sessionTiers[usr.Tier], Providers: demoProviders}
	labels := make(map[uuid.UUID]string, len(sessions))
	for _, s := range sessions {
		labels[s.ID] = s.Device.Label
		if s.StateAt(now) != sessionkit.StateActive {
			continue
		}
		v.Devices = append(v.Devices, deviceOf(s, s.ID == current, now))
		if s.ImpersonatedBy == "" {
			v.Counted++
		}
	}
	// This device first, then the most recently active.
	slices.SortStableFunc(v.Devices, func(x, y deviceView) int {
		if x.Current != y.Current {
			if x.Current {
				return -1
			}
			return 1
		}
		return y.lastActive.Compare(x.lastActive)
	})
	v.Others = max(len(v.Devices)-1, 0)
	for _, e := range events {
		ev := describeEvent(e)
		ev.Device = cmp.Or(labels[e.SessionID], "A device")
		ev.This = e.SessionID == current
		ev.When = newStamp(e.At, now)
		v.Events = append(v.Events, ev)
	}
	return v
}

func deviceOf(s sessionkit.Session, current bool, now time.Time) deviceView {
	d := deviceView{
		ID:         s.ID.String(),
		Label:      cmp.Or(s.Device.Label, "Unknown device"),
		Mobile:     s.Device.Mobile,
		Location:   locationText(s.Location, s.LastIPAddress),
		IP:         addrText(s.LastIPAddress),
		IPChanges:  s.IPChangeCount,
		Created:    newStamp(s.CreatedAt, now),
		LastActive: newStamp(s.LastActivityAt, now),
		Current:    current,
		APIClient:  s.Bearer,
		Support:    s.ImpersonatedBy,
		lastActive: s.LastActivityAt,
	}
	if s.IPAddress.IsValid() && s.IPAddress != s.LastIPAddress {
		d.FirstIP = s.IPAddress.String()
	}
	for i := len(s.ProvidersAccessed) - 1; i >= 0; i-- {
		d.Providers = append(d.Providers, providerName(s.ProvidersAccessed[i]))
	}
	if len(d.Providers) > 0 {
		d.LastAccess = newStamp(s.LastProviderAccessAt, now)
	}
	return d
}

// locationText says where a session is, or why that is not known.
func locationText(l sessionkit.Location, ip netip.Addr) string {
	switch {
	case l.Label != "":
		return l.Label
	case ip.IsLoopback():
		return "This computer"
	case ip.IsPrivate() || ip.IsLinkLocalUnicast():
		return "Local network"
	}
	return "Unknown location"
}

func addrText(ip netip.Addr) string {
	if !ip.IsValid() {
		return "unknown address"
	}
	return ip.String()
}

// revokeReasons words the reasons a session was revoked for the timeline.
var revokeReasons = map[string]string{
	sessionkit.ReasonLogout:      "Signed out",
	sessionkit.ReasonUserRevoked: "Signed out from another device",
	sessionkit.ReasonLogoutAll:   "Signed out by “sign out everywhere else”",
	sessionkit.ReasonLogin:       "Replaced by a new sign-in in the same browser",
	sessionkit.ReasonIPChanged:   "Signed out after an address change",
}

// describeEvent words an audit event for the timeline. An event an
// operator caused (Event.Actor) names them, so the user sees what support did.
func describeEvent(e sessionkit.Event) eventView {
	switch e.Type {
	case sessionkit.EventCreated:
		text := "Signed in"
		if e.Actor != "" {
			text = "Support session opened by " + e.Actor
		}
		if e.IPAddress != "" {
			text += " from " + e.IPAddress
		}
		switch {
		case e.NewCountry:
			text += " (new country)"
		case e.NewDevice:
			text += " (new device)"
		}
		return eventView{Kind: "in", Text: text}
	case sessionkit.EventRevoked:
		if e.Actor != "" {
			return eventView{Kind: "out", Text: "Signed out by " + e.Actor}
		}
		text, ok := revokeReasons[e.Reason]
		if !ok {
			text = "Revoked"
			if e.Reason != "" {
				text += " (" + e.Reason + ")"
			}
		}
		return eventView{Kind: "out", Text: text}
	case sessionkit.EventEvicted:
		return eventView{Kind: "warn", Text: "Signed out by the session limit when another device signed in"}
	case sessionkit.EventIPChanged:
		return eventView{Kind: "warn", Text: "Address changed from " + cmp.Or(e.PreviousIP, "?") + " to " + cmp.Or(e.IPAddress, "?")}
	case sessionkit.EventProviderAccessed:
		return eventView{Kind: "info", Text: "Opened " + providerName(e.Provider) + " accounts"}
	case sessionkit.EventRefreshLinked:
		return eventView{Kind: "info", Text: "Refresh token linked"}
	case sessionkit.EventActivity:
		return eventView{Kind: "info", Text: "Active"}
	}
	return eventView{Kind: "info", Text: string(e.Type)}
}

// relTime says how long ago t was, in the words of a "last active" column.
func relTime(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 24*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	case d < 30*24*time.Hour:
		if n := int(d / (24 * time.Hour)); n > 1 {
			return plural(n, "day") + " ago"
		}
		return "yesterday"
	}
	return "on " + t.UTC().Format("2 Jan 2006")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// account is one fake brokerage account.
type account struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Type     string  `json:"type"`
	Balance  float64 `json:"balance"`
	Currency string  `json:"currency"`
}

// providerAccountsView is the answer of GET /providers/{name}/accounts.
type providerAccountsView struct {
	Provider string    `json:"provider"`
	Display  string    `json:"display_name"`
	Accounts []account `json:"accounts"`
}

// fakeProvider makes up accounts for a provider, the same ones every time.
func fakeProvider(name string) providerAccountsView {
	seed := 0
	for _, c := range name {
		seed = seed*31 + int(c)
	}
	seed = (seed%9000+9000)%9000 + 1000
	digits := func(n int) string { return fmt.Sprintf("…%04d", n%10000) }
	display := providerName(name)
	return providerAccountsView{
		Provider: name,
		Display:  display,
		Accounts: []account{
			{ID: name + "-brokerage", Name: display + " Individual Brokerage " + digits(seed), Type: "brokerage", Balance: float64(seed*37) + 0.42, Currency: "USD"},
			{ID: name + "-roth-ira", Name: display + " Roth IRA " + digits(seed*7), Type: "retirement", Balance: float64(seed*11) + 0.17, Currency: "USD"},
		},
	}
}

// providerName is how the page names a provider.
func providerName(name string) string {
	for _, p := range demoProviders {
		if p.Name == name {
			return p.Display
		}
	}
	return name
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// templateFuncs are the helpers the page templates use.
var templateFuncs = template.FuncMap{
	"money": func(v float64) string {
		whole := strconv.FormatInt(int64(v), 10)
		var b strings.Builder
		for i, c := range whole {
			if i > 0 && (len(whole)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return fmt.Sprintf("$%s.%02d", b.String(), int64(v*100+0.5)%100)
	},
}
