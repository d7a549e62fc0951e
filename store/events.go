package store

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sessionid"
)

// The audit trail is a list, newest first, of entries written by
// common.lua's event: the entry's id, then the names and values of its
// non-empty fields, all joined by sep. A list of one entry costs a few
// hundred bytes where a stream preallocates 4 KB per node, and most users
// have few events. A trail of one entry is that entry as a string, about
// 100 bytes less again; the second entry makes it a list.
//
// Releases before the list kept the trail in a stream (rediskey's
// EventsV1). Nothing writes it any more; it is read beside the list until
// its TTL (the audit retention) ends it.

// eventScan is how many list entries one read asks for, at least.
const eventScan = 100

// Events implements sessionkit.Store.
func (r *Redis) Events(ctx context.Context, userID uuid.UUID, q sessionkit.EventQuery) ([]sessionkit.Event, error) {
	u := r.keys.ForUser(userID)
	tag, print := sessionid.TagOf(userID), userPrint(userID)
	before, hasBefore := parseEventID(q.Before)
	limit := q.Limit
	chunk := int64(max(limit, eventScan))

	start := "+"
	if hasBefore {
		start = "(" + q.Before
	}
	var old *redis.XMessageSliceCmd
	var list []string
	// The trail is read as a list and as a string: one of the two fails
	// (a wrong type) while it exists. Both fail only if a write turned the
	// string into a list between them: then it is read again.
	for attempt := 0; ; attempt++ {
		var entries *redis.StringSliceCmd
		var one *redis.StringCmd
		_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			entries = p.LRange(ctx, u.Events, 0, chunk-1)
			one = p.Get(ctx, u.Events)
			old = p.XRevRangeN(ctx, u.EventsV1, start, "-", int64(limit))
			return nil
		})
		for _, c := range []redis.Cmder{entries, one, old} {
			if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) && !wrongType(err) {
				return nil, unavailable("events", err)
			}
		}
		if !wrongType(entries.Err()) {
			list = entries.Val()
			break
		}
		if !wrongType(one.Err()) {
			list = []string{one.Val()}
			break
		}
		if attempt == 1 {
			return nil, unavailable("events", entries.Err()) // neither a list nor a string
		}
	}
	var out []sessionkit.Event
	for off := int64(0); ; off += chunk {
		if off > 0 {
			page := r.c.LRange(ctx, u.Events, off, off+chunk-1)
			if err := page.Err(); err != nil {
				if wrongType(err) {
					break // the trail ended and began again as one entry meanwhile
				}
				return nil, unavailable("events", err)
			}
			list = page.Val()
		}
		for _, v := range list {
			e, ok := decodeEntry(tag, userID, print, v)
			if !ok {
				continue
			}
			if id, _ := parseEventID(e.ID); hasBefore && id.compare(before) >= 0 {
				continue
			}
			out = append(out, e)
			if len(out) == limit {
				break
			}
		}
		if len(out) == limit || int64(len(list)) < chunk {
			break
		}
	}
	for _, msg := range old.Val() {
		if e, ok := decodeEvent(tag, userID, msg); ok {
			out = append(out, e)
		}
	}
	if len(old.Val()) > 0 { // two sources: newest first, by id
		slices.SortStableFunc(out, func(a, b sessionkit.Event) int {
			x, _ := parseEventID(a.ID)
			y, _ := parseEventID(b.ID)
			return y.compare(x)
		})
		out = out[:min(len(out), limit)]
	}
	return out, nil
}

// eventID is a parsed "<ms>-<seq>" id.
type eventID struct{ ms, seq uint64 }

func parseEventID(s string) (eventID, bool) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return eventID{}, false
	}
	a, errA := strconv.ParseUint(ms, 10, 64)
	b, errB := strconv.ParseUint(seq, 10, 64)
	return eventID{a, b}, errA == nil && errB == nil
}

func (x eventID) compare(y eventID) int {
	if c := cmp.Compare(x.ms, y.ms); c != 0 {
		return c
	}
	return cmp.Compare(x.seq, y.seq)
}

// userPrint is how a list entry names its owner: the first 64 bits of
// SHA-1 of the user id's text, in hex (common.lua's user_print).
func userPrint(userID uuid.UUID) string {
	sum := sha1.Sum([]byte(userID.String()))
	return hex.EncodeToString(sum[:8])
}

// decodeEntry reads a list entry of userID's trail; false for another
// user's (their tags collide) or a malformed one. print is userPrint(userID).
func decodeEntry(tag sessionid.Tag, userID uuid.UUID, print, v string) (sessionkit.Event, bool) {
	id, rest, _ := strings.Cut(v, sep)
	parsed, ok := parseEventID(id)
	if !ok {
		return sessionkit.Event{}, false
	}
	values := make(map[string]any, 12)
	for rest != "" {
		var name, value string
		name, rest, _ = strings.Cut(rest, sep)
		value, rest, _ = strings.Cut(rest, sep)
		values[name] = value
	}
	if values[evUser] != print {
		return sessionkit.Event{}, false
	}
	values[evUser] = userID.String()
	if t, ok := values[evType].(string); ok {
		values[evType] = string(eventTypeOf(t))
	}
	if _, ok := values[evAt]; !ok {
		values[evAt] = strconv.FormatUint(parsed.ms, 10)
	}
	return decodeEvent(tag, userID, redis.XMessage{ID: id, Values: values})
}

func decodeEvent(tag sessionid.Tag, userID uuid.UUID, msg redis.XMessage) (sessionkit.Event, bool) {
	v := func(k string) string { s, _ := msg.Values[k].(string); return s }
	if v(evUser) != userID.String() {
		return sessionkit.Event{}, false
	}
	sid, ok := sessionOf(tag, v(evSession))
	if !ok {
		return sessionkit.Event{}, false
	}
	e := sessionkit.Event{
		ID: msg.ID, Type: sessionkit.EventType(v(evType)), SessionID: sid, UserID: userID,
		At: fromMillis(v(evAt)), Reason: v(evReason), IPAddress: v(evIP), PreviousIP: v(evPreviousIP),
		Country: v(evCountry), PreviousCountry: v(evPreviousCountry), DeviceLabel: v(evDevice),
		NewDevice: v(evNewDevice) == "1", NewCountry: v(evNewCountry) == "1",
		Provider: v(evProvider), RefreshTokenID: v(evRefreshToken), Actor: v(evActor),
	}
	if by, ok := sessionOf(tag, v(evBy)); ok {
		e.ByID = by
	}
	return e, true
}

// wrongType reports a reply refusing a command for the type of its key.
func wrongType(err error) bool { return err != nil && redis.HasErrorPrefix(err, "WRONGTYPE") }
