package store

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/rediskey"
)

func ms(d time.Duration) int64 { return d.Milliseconds() }

// Create implements sessionkit.Store.
func (r *Redis) Create(ctx context.Context, req sessionkit.CreateRequest) (sessionkit.CreateOutcome, error) {
	s := req.Session
	u := r.keys.ForSession(s.ID) // the Manager mints ids in their owner's slot
	member := rediskey.Member(s.ID)
	args := []any{
		millis(req.Now), member, req.Limit, ms(req.Retention), req.StreamMax,
		ms(req.SeenWindow), ms(req.LimitTTL), r.keys.Channel(), s.UserID.String(),
		bound(s.Device.Label), bound(s.Location.CountryCode), s.IPAddress.String(),
		rediskey.TagHex(rediskey.SessionTag(s.ID)), encodeSession(s, req.TokenHash),
	}
	reply, err := run(ctx, r.c, scriptCreate, "create", keysOf(u), args...)
	if err != nil {
		return sessionkit.CreateOutcome{}, err
	}
	if asString(reply[0]) == "dup" {
		return sessionkit.CreateOutcome{}, sessionkit.ErrDuplicateID
	}
	if len(reply) < 5 {
		return sessionkit.CreateOutcome{}, unavailable("create", errReply)
	}
	out := sessionkit.CreateOutcome{NewDevice: asInt(reply[1]) == 1, NewCountry: asInt(reply[2]) == 1}
	tag := rediskey.SessionTag(s.ID)
	ids := asSlice(reply[4])
	for i, m := range asSlice(reply[3]) {
		sid, ok := sessionOf(tag, asString(m))
		if !ok {
			continue
		}
		out.Evicted = append(out.Evicted, sid)
		out.Events = append(out.Events, sessionkit.Event{
			ID: asString(ids[i]), Type: sessionkit.EventEvicted, SessionID: sid, UserID: s.UserID,
			At: req.Now, Reason: sessionkit.ReasonLimitExceeded, ByID: s.ID,
		})
	}
	out.Events = append(out.Events, sessionkit.Event{
		ID: asString(ids[len(ids)-1]), Type: sessionkit.EventCreated, SessionID: s.ID, UserID: s.UserID,
		At: req.Now, IPAddress: s.IPAddress.String(), Country: s.Location.CountryCode,
		DeviceLabel: s.Device.Label, NewDevice: out.NewDevice, NewCountry: out.NewCountry,
	})
	return out, nil
}

// Touch implements sessionkit.Store.
func (r *Redis) Touch(ctx context.Context, req sessionkit.TouchRequest) (sessionkit.TouchOutcome, error) {
	u := r.keys.ForSession(req.SessionID)
	hash := ""
	if req.TokenHash != nil {
		hash = hashText(*req.TokenHash)
	}
	ip := ""
	if req.IP.IsValid() {
		ip = req.IP.String()
	}
	locate, located := "0", "0"
	if req.Location != nil {
		located = "1"
	} else if req.Locate {
		locate = "1"
	}
	activity := "0"
	if req.ActivityEvent {
		activity = "1"
	}
	args := []any{millis(req.Now), rediskey.Member(req.SessionID), hash, ip, ms(req.Throttle),
		ms(req.Retention), locate, located, activity, req.StreamMax}
	if req.Location != nil {
		for _, v := range locationValues(*req.Location) {
			args = append(args, v)
		}
	}
	reply, err := run(ctx, r.c, scriptTouch, "touch", keysOf(u), args...)
	if err != nil {
		return sessionkit.TouchOutcome{}, err
	}
	switch asString(reply[0]) {
	case "ok":
	case "loc":
		return sessionkit.TouchOutcome{NeedLocation: true}, nil
	default:
		if err := refusal(reply); err != nil {
			return sessionkit.TouchOutcome{}, err
		}
		return sessionkit.TouchOutcome{}, unavailable("touch", errReply)
	}
	if len(reply) < 7 {
		return sessionkit.TouchOutcome{}, unavailable("touch", errReply)
	}
	s, ok := decodeSession(req.SessionID, asString(reply[5]))
	if !ok {
		return sessionkit.TouchOutcome{}, unavailable("touch", errReply)
	}
	out := sessionkit.TouchOutcome{Session: s, Written: asInt(reply[1]) == 1, IPChanged: asInt(reply[2]) == 1}
	if out.IPChanged {
		out.PreviousIP, _ = netip.ParseAddr(asString(reply[3]))
		out.PreviousCountry = asString(reply[4])
	}
	ids := asSlice(reply[6])
	if out.IPChanged && len(ids) > 0 {
		out.Events = append(out.Events, sessionkit.Event{
			ID: asString(ids[0]), Type: sessionkit.EventIPChanged, SessionID: s.ID, UserID: s.UserID, At: req.Now,
			IPAddress: ip, PreviousIP: asString(reply[3]), Country: s.Location.CountryCode, PreviousCountry: out.PreviousCountry,
		})
		ids = ids[1:]
	}
	if len(ids) > 0 {
		out.Events = append(out.Events, sessionkit.Event{
			ID: asString(ids[0]), Type: sessionkit.EventActivity, SessionID: s.ID, UserID: s.UserID, At: req.Now,
			IPAddress: s.LastIPAddress.String(),
		})
	}
	return out, nil
}

// Revoke implements sessionkit.Store.
func (r *Redis) Revoke(ctx context.Context, req sessionkit.RevokeRequest) (sessionkit.RevokeOutcome, error) {
	u := r.keys.ForSession(req.SessionID)
	if u != r.keys.ForUser(req.UserID) {
		return sessionkit.RevokeOutcome{}, sessionkit.ErrNotFound // the id is not in this user's slot
	}
	reply, err := run(ctx, r.c, scriptRevoke, "revoke", keysOf(u),
		millis(req.Now), rediskey.Member(req.SessionID), req.UserID.String(), req.Reason,
		ms(req.Retention), req.StreamMax, r.keys.Channel(), rediskey.TagHex(rediskey.SessionTag(req.SessionID)))
	if err != nil {
		return sessionkit.RevokeOutcome{}, err
	}
	if asString(reply[0]) != "ok" || len(reply) < 2 {
		if err := refusal(reply); err != nil {
			return sessionkit.RevokeOutcome{}, err
		}
		return sessionkit.RevokeOutcome{}, unavailable("revoke", errReply)
	}
	return sessionkit.RevokeOutcome{Events: []sessionkit.Event{{
		ID: asString(reply[1]), Type: sessionkit.EventRevoked, SessionID: req.SessionID,
		UserID: req.UserID, At: req.Now, Reason: req.Reason,
	}}}, nil
}

// RevokeAll implements sessionkit.Store.
func (r *Redis) RevokeAll(ctx context.Context, req sessionkit.RevokeAllRequest) (sessionkit.RevokeAllOutcome, error) {
	u := r.keys.ForUser(req.UserID)
	except := ""
	if req.Except != uuid.Nil {
		except = rediskey.Member(req.Except)
	}
	reply, err := run(ctx, r.c, scriptRevokeAll, "revoke all", keysOf(u),
		millis(req.Now), except, req.Reason, req.StreamMax, r.keys.Channel(),
		ms(req.Retention), req.UserID.String(), rediskey.TagHex(rediskey.UserTag(req.UserID)))
	if err != nil {
		return sessionkit.RevokeAllOutcome{}, err
	}
	if asString(reply[0]) != "ok" || len(reply) < 3 {
		return sessionkit.RevokeAllOutcome{}, unavailable("revoke all", errReply)
	}
	tag := rediskey.UserTag(req.UserID)
	ids := asSlice(reply[2])
	var out sessionkit.RevokeAllOutcome
	for i, m := range asSlice(reply[1]) {
		sid, ok := sessionOf(tag, asString(m))
		if !ok {
			continue
		}
		out.Revoked = append(out.Revoked, sid)
		out.Events = append(out.Events, sessionkit.Event{
			ID: asString(ids[i]), Type: sessionkit.EventRevoked, SessionID: sid,
			UserID: req.UserID, At: req.Now, Reason: req.Reason,
		})
	}
	return out, nil
}

// RecordProvider implements sessionkit.Store.
func (r *Redis) RecordProvider(ctx context.Context, req sessionkit.ProviderRequest) (sessionkit.ProviderOutcome, error) {
	u := r.keys.ForSession(req.SessionID)
	reply, err := run(ctx, r.c, scriptProvider, "record provider", keysOf(u),
		millis(req.Now), rediskey.Member(req.SessionID), req.Provider, req.MaxProviders,
		ms(req.Throttle), req.StreamMax, ms(req.Retention))
	if err != nil {
		return sessionkit.ProviderOutcome{}, err
	}
	if asString(reply[0]) != "ok" || len(reply) < 5 {
		if err := refusal(reply); err != nil {
			return sessionkit.ProviderOutcome{}, err
		}
		return sessionkit.ProviderOutcome{}, unavailable("record provider", errReply)
	}
	out := sessionkit.ProviderOutcome{Written: asInt(reply[1]) == 1, First: asInt(reply[2]) == 1}
	if out.Written {
		uid, _ := uuid.Parse(asString(reply[3]))
		out.Events = []sessionkit.Event{{
			ID: asString(reply[4]), Type: sessionkit.EventProviderAccessed, SessionID: req.SessionID,
			UserID: uid, At: req.Now, Provider: req.Provider,
		}}
	}
	return out, nil
}

// LinkRefreshToken implements sessionkit.Store.
func (r *Redis) LinkRefreshToken(ctx context.Context, req sessionkit.LinkRequest) (sessionkit.LinkOutcome, error) {
	u := r.keys.ForSession(req.SessionID)
	reply, err := run(ctx, r.c, scriptLink, "link refresh token", keysOf(u),
		millis(req.Now), rediskey.Member(req.SessionID), req.RefreshTokenID, req.StreamMax, ms(req.Retention))
	if err != nil {
		return sessionkit.LinkOutcome{}, err
	}
	if asString(reply[0]) != "ok" || len(reply) < 3 {
		if err := refusal(reply); err != nil {
			return sessionkit.LinkOutcome{}, err
		}
		return sessionkit.LinkOutcome{}, unavailable("link refresh token", errReply)
	}
	uid, _ := uuid.Parse(asString(reply[1]))
	return sessionkit.LinkOutcome{Events: []sessionkit.Event{{
		ID: asString(reply[2]), Type: sessionkit.EventRefreshLinked, SessionID: req.SessionID,
		UserID: uid, At: req.Now, RefreshTokenID: req.RefreshTokenID,
	}}}, nil
}

// keysOf lists u's keys in the order every script receives them (see
// common.lua).
func keysOf(u rediskey.User) []string {
	return []string{u.Active, u.Index, u.Retained, u.All, u.Revoked, u.Owners, u.Events, u.Limit, u.Seen}
}

// Peek implements sessionkit.Peeker: one read-only command, an HGET of the
// session in the user's active sessions. Only a session that is not active
// costs a second round trip, for its retained record and revocation.
func (r *Redis) Peek(ctx context.Context, id uuid.UUID) (sessionkit.Peeked, error) {
	key, member := r.keys.Active(id)
	v, err := r.hget(ctx, key, member)
	active := err == nil
	rev := ""
	switch {
	case errors.Is(err, redis.Nil):
		v, rev, err = r.retained(ctx, r.keys.ForSession(id), member)
		if err != nil {
			return sessionkit.Peeked{}, unavailable("peek", err)
		}
	case err != nil:
		return sessionkit.Peeked{}, unavailable("peek", err)
	}
	s, ok := decodeSession(id, v)
	if !ok {
		return sessionkit.Peeked{}, sessionkit.ErrNotFound
	}
	pk := sessionkit.Peeked{Session: s, Indexed: active}
	if !decodeHash(v, &pk.TokenHash) {
		return sessionkit.Peeked{}, sessionkit.ErrNotFound
	}
	if !active {
		var re *sessionkit.RevokedError
		if rev != "" && errors.As(revokedError(rev), &re) {
			pk.Session.RevokedAt, pk.Session.RevokedReason = re.At, re.Reason
		}
	}
	return pk, nil
}

// retained reads a session that is no longer active and its revocation
// record; both are empty when unknown.
func (r *Redis) retained(ctx context.Context, u rediskey.User, member string) (value, rev string, err error) {
	var v, why *redis.StringCmd
	_, err = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		v = p.HGet(ctx, u.Retained, member)
		why = p.HGet(ctx, u.Revoked, member)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", "", err
	}
	return v.Val(), why.Val(), nil
}

// Get implements sessionkit.Store in one pipelined round trip.
func (r *Redis) Get(ctx context.Context, id uuid.UUID, now time.Time) (sessionkit.Session, error) {
	u := r.keys.ForSession(id)
	member := rediskey.Member(id)
	var act, ret, rev *redis.StringCmd
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		act = p.HGet(ctx, u.Active, member)
		ret = p.HGet(ctx, u.Retained, member)
		rev = p.HGet(ctx, u.Revoked, member)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return sessionkit.Session{}, unavailable("get", err)
	}
	active := act.Err() == nil
	v := act.Val()
	if !active {
		v = ret.Val()
	}
	s, ok := decodeSession(id, v)
	if !ok {
		return sessionkit.Session{}, sessionkit.ErrNotFound
	}
	applyState(&s, active, rev.Val(), now)
	return s, nil
}

// applyState records revocation on s from its standing and the rev hash. A
// retained session without a revocation record that its timestamps still
// call active (records changed by hand) counts as revoked: never served
// from stale state.
func applyState(s *sessionkit.Session, indexed bool, rev string, now time.Time) {
	if indexed {
		return
	}
	if rev != "" {
		var re *sessionkit.RevokedError
		if errors.As(revokedError(rev), &re) {
			s.RevokedAt, s.RevokedReason = re.At, re.Reason
		}
		return
	}
	if s.StateAt(now) == sessionkit.StateActive {
		s.RevokedAt, s.RevokedReason = now, "unknown"
	}
}

// List implements sessionkit.Store: one pipelined round trip, O(the user's sessions).
func (r *Redis) List(ctx context.Context, userID uuid.UUID, includeRevoked bool, now time.Time) ([]sessionkit.Session, error) {
	u := r.keys.ForUser(userID)
	tag := rediskey.UserTag(userID)
	var act, ret, rev *redis.MapStringStringCmd
	var kept *redis.StringSliceCmd
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		act = p.HGetAll(ctx, u.Active)
		if includeRevoked {
			ret = p.HGetAll(ctx, u.Retained)
			rev = p.HGetAll(ctx, u.Revoked)
			kept = p.ZRangeByScore(ctx, u.All, &redis.ZRangeBy{Min: "(" + strconv.FormatInt(millis(now), 10), Max: "+inf"})
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("list", err)
	}
	out := make([]sessionkit.Session, 0, len(act.Val()))
	add := func(m, v string, active bool) {
		sid, ok := sessionOf(tag, m)
		if !ok {
			return
		}
		s, ok := decodeSession(sid, v)
		if !ok || s.UserID != userID {
			return // another user sharing the tag
		}
		why := ""
		if rev != nil {
			why = rev.Val()[m]
		}
		applyState(&s, active, why, now)
		if !includeRevoked && s.StateAt(now) != sessionkit.StateActive {
			return
		}
		out = append(out, s)
	}
	for m, v := range act.Val() {
		add(m, v, true)
	}
	if includeRevoked {
		retained := ret.Val()
		for _, m := range kept.Val() { // past its purge time, a record is gone even if not yet pruned
			if v, ok := retained[m]; ok {
				add(m, v, false)
			}
		}
	}
	slices.SortFunc(out, func(a, b sessionkit.Session) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	return out, nil
}

// Events implements sessionkit.Store.
func (r *Redis) Events(ctx context.Context, userID uuid.UUID, q sessionkit.EventQuery) ([]sessionkit.Event, error) {
	u := r.keys.ForUser(userID)
	start := "+"
	if q.Before != "" {
		start = "(" + q.Before
	}
	msgs, err := r.c.XRevRangeN(ctx, u.Events, start, "-", int64(q.Limit)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("events", err)
	}
	tag := rediskey.UserTag(userID)
	out := make([]sessionkit.Event, 0, len(msgs))
	for _, msg := range msgs {
		if e, ok := decodeEvent(tag, userID, msg); ok {
			out = append(out, e)
		}
	}
	return out, nil
}

func decodeEvent(tag rediskey.Tag, userID uuid.UUID, msg redis.XMessage) (sessionkit.Event, bool) {
	v := func(k string) string { s, _ := msg.Values[k].(string); return s }
	if v("u") != userID.String() {
		return sessionkit.Event{}, false
	}
	sid, ok := sessionOf(tag, v("s"))
	if !ok {
		return sessionkit.Event{}, false
	}
	e := sessionkit.Event{
		ID: msg.ID, Type: sessionkit.EventType(v("t")), SessionID: sid, UserID: userID,
		At: fromMillis(v("at")), Reason: v("r"), IPAddress: v("ip"), PreviousIP: v("pip"),
		Country: v("cc"), PreviousCountry: v("pcc"), DeviceLabel: v("dl"),
		NewDevice: v("nd") == "1", NewCountry: v("nc") == "1", Provider: v("p"), RefreshTokenID: v("rt"),
	}
	if by, ok := sessionOf(tag, v("by")); ok {
		e.ByID = by
	}
	return e, true
}

// SetLimit implements sessionkit.Store.
func (r *Redis) SetLimit(ctx context.Context, userID uuid.UUID, limit int, ttl time.Duration) error {
	key := r.keys.ForUser(userID).Limit
	var err error
	if limit == 0 {
		err = r.c.Del(ctx, key).Err()
	} else {
		err = r.c.Set(ctx, key, limit, ttl).Err()
	}
	if err != nil {
		return unavailable("set limit", err)
	}
	return nil
}

// Limit implements sessionkit.Store.
func (r *Redis) Limit(ctx context.Context, userID uuid.UUID) (int, bool, error) {
	n, err := r.c.Get(ctx, r.keys.ForUser(userID).Limit).Int()
	switch {
	case errors.Is(err, redis.Nil):
		return 0, false, nil
	case err != nil:
		return 0, false, unavailable("limit", err)
	}
	return n, true, nil
}
