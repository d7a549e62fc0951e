package handlers

import (
	"net/http"
	"strconv"

	"github.com/google/uuid"
	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/middleware"
)

// Event page sizes of GET /sessions/events.
const (
	defaultEventLimit = 50
	maxEventLimit     = 500
)

// eventsResponse is the body of GET /sessions/events. Next is the cursor
// for the following (older) page, null on the last page.
type eventsResponse struct {
	Events []sessionkit.Event `json:"events"`
	Next   *string            `json:"next"`
}

// events is GET /sessions/events[?before=<id>&limit=n]: the caller's audit
// trail, newest first, limit 1..500 (default 50).
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	h.writeEvents(w, r, session(r).UserID)
}

// writeEvents answers a page of user's audit trail (?limit=, ?before=).
func (h *Handler) writeEvents(w http.ResponseWriter, r *http.Request, user uuid.UUID) {
	q := r.URL.Query()
	limit := defaultEventLimit
	if v := q.Get("limit"); v != "" || q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxEventLimit {
			h.problem(w, r, http.StatusBadRequest, middleware.ReasonInvalidRequest, "limit must be an integer from 1 to 500.")
			return
		}
		limit = n
	}
	before := q.Get("before")
	if q.Has("before") && before == "" {
		h.problem(w, r, http.StatusBadRequest, middleware.ReasonInvalidRequest, "before must be an event id.")
		return
	}
	// One more than asked tells whether there is a next page.
	fetch := min(limit+1, maxEventLimit)
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	evs, err := h.m.Events(ctx, user, sessionkit.EventQuery{Before: before, Limit: fetch})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := eventsResponse{Events: evs}
	if len(evs) > limit || (limit == maxEventLimit && len(evs) == limit) {
		out.Events = evs[:limit]
		next := out.Events[limit-1].ID
		out.Next = &next
	}
	if out.Events == nil {
		out.Events = []sessionkit.Event{}
	}
	writeJSON(w, http.StatusOK, out)
}
