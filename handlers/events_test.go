package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/middleware"
)

type eventPage struct {
	Events []sessionkit.Event `json:"events"`
	Next   *string            `json:"next"`
}

func TestEventsArePagedNewestFirst(t *testing.T) {
	f := newFixture(t, setup{})
	c := f.client(t)
	for range 3 {
		f.login(t, f.client(t), "alice")
	}
	s, _ := f.login(t, c, "alice")
	if _, err := f.m.RecordProviderAccess(context.Background(), sessionkit.RecordProviderAccess{SessionID: s.ID, ProviderName: "schwab"}); err != nil {
		t.Fatal(err)
	}
	f.do(t, c, "DELETE", "/sessions", nil, nil) // three session_revoked events
	all, err := f.m.Events(context.Background(), f.alice, sessionkit.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 8 {
		t.Fatalf("events in the store: got %d, want 8", len(all))
	}

	var got []sessionkit.Event
	path := "/sessions/events?limit=3"
	for pages := 0; ; pages++ {
		if pages > len(all) {
			t.Fatal("paging does not end")
		}
		var p eventPage
		r := f.do(t, c, "GET", path, nil, nil)
		if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: got %d (%s) Cache-Control %q, want 200 no-store", path, r.status, r.body, r.header.Get("Cache-Control"))
		}
		r.decode(t, &p)
		if len(p.Events) > 3 {
			t.Fatalf("page size: got %d, want at most 3", len(p.Events))
		}
		got = append(got, p.Events...)
		if p.Next == nil {
			break
		}
		path = "/sessions/events?limit=3&before=" + url.QueryEscape(*p.Next)
	}
	if len(got) != len(all) {
		t.Fatalf("events paged: got %d, want %d", len(got), len(all))
	}
	for i := range all {
		if got[i].ID != all[i].ID || got[i].Type != all[i].Type {
			t.Errorf("event %d: got %s %s, want %s %s", i, got[i].ID, got[i].Type, all[i].ID, all[i].Type)
		}
	}
	if got[0].Type != sessionkit.EventRevoked || got[len(got)-1].Type != sessionkit.EventCreated {
		t.Errorf("order: newest %s, oldest %s; want session_revoked first, session_created last", got[0].Type, got[len(got)-1].Type)
	}

	// A page that ends exactly at the last event has no next cursor.
	var p eventPage
	f.do(t, c, "GET", "/sessions/events?limit=8", nil, nil).decode(t, &p)
	if len(p.Events) != 8 || p.Next != nil {
		t.Errorf("exact page: got %d events, next %v; want 8, null", len(p.Events), p.Next)
	}
	f.do(t, c, "GET", "/sessions/events", nil, nil).decode(t, &p)
	if len(p.Events) != 8 || p.Next != nil {
		t.Errorf("default page: got %d events, next %v; want 8, null", len(p.Events), p.Next)
	}
	// bob sees only his own trail.
	bob := f.client(t)
	f.login(t, bob, "bob")
	f.do(t, bob, "GET", "/sessions/events", nil, nil).decode(t, &p)
	if len(p.Events) != 1 || p.Events[0].UserID != f.bob {
		t.Errorf("bob's events: got %+v, want his one session_created", p.Events)
	}

	for _, q := range []string{"limit=0", "limit=501", "limit=abc", "limit=", "before=", "before=abc", "before=1-2-3", "limit=-1"} {
		t.Run(q, func(t *testing.T) {
			f.do(t, c, "GET", "/sessions/events?"+q, nil, nil).wantProblem(t, 400, middleware.ReasonInvalidRequest)
		})
	}
}
