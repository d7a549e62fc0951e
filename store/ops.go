package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	mathrand "math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/announce"
	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/rediskey"
	"github.com/sessionkit/sessionkit/internal/sessionid"
	"github.com/sessionkit/sessionkit/internal/token"
)

// Create implements sessionkit.Store.
func (r *Redis) Create(ctx context.Context, c backend.Call, s sessionkit.Session, cred backend.Credentials, limit backend.Limit) (backend.Created, []sessionkit.Event, error) {
	tag := sessionid.TagIn(s.ID) // the Manager mints ids in their owner's slot
	member := sessionid.Member(s.ID)
	var out createReply
	err := r.exec(ctx, scriptCreate, r.keys.ForTag(tag), c, createArgs{
		Member: member, Limit: limit.Max, Reject: limit.Reject, ImpersonatedBy: clean(s.ImpersonatedBy),
		UserID: s.UserID.String(), Device: bound(s.Device.Label),
		Country: bound(s.Location.CountryCode), IP: s.IPAddress.String(), Announce: announce.Head(tag),
		Value: encodeSession(s, cred.TokenHash, cred.RefreshHash, cred.RefreshFamily),
	}, &out)
	if err != nil {
		return backend.Created{}, nil, err
	}
	if len(out.EventIDs) != len(out.Evicted)+1 {
		return backend.Created{}, nil, unavailable(scriptCreate.name, errReply)
	}
	created := backend.Created{NewDevice: out.NewDevice, NewCountry: out.NewCountry}
	var events []sessionkit.Event
	for i, m := range out.Evicted {
		sid, ok := sessionOf(tag, m)
		if !ok {
			continue
		}
		created.Evicted = append(created.Evicted, sid)
		events = append(events, sessionkit.Event{
			ID: out.EventIDs[i], Type: sessionkit.EventEvicted, SessionID: sid, UserID: s.UserID,
			At: c.Now, Reason: sessionkit.ReasonLimitExceeded, ByID: s.ID,
		})
	}
	events = append(events, sessionkit.Event{
		ID: out.EventIDs[len(out.Evicted)], Type: sessionkit.EventCreated, SessionID: s.ID, UserID: s.UserID,
		At: c.Now, IPAddress: s.IPAddress.String(), Country: s.Location.CountryCode,
		DeviceLabel: s.Device.Label, NewDevice: out.NewDevice, NewCountry: out.NewCountry,
		Actor: s.ImpersonatedBy,
	})
	return created, events, nil
}

// Touch implements sessionkit.Store.
func (r *Redis) Touch(ctx context.Context, c backend.Call, use backend.Use, loc *sessionkit.Location) (sessionkit.Session, backend.Used, []sessionkit.Event, error) {
	args := touchArgs{Member: sessionid.Member(use.SessionID), Hold: use.Hold, Revoke: use.Revoke}
	if use.Revoke {
		args.Call = newCall()
	}
	if use.Revoke || use.IP.IsValid() {
		// A revocation, or a recorded address change, is announced: other
		// instances' caches hold the session's previous address, and would
		// serve a request from it undecided (IPDecision) and unrecorded.
		args.Announce = announce.Head(sessionid.TagIn(use.SessionID))
	}
	if use.From.IsValid() {
		args.From = use.From.String()
	}
	if use.TokenHash != nil {
		args.TokenHash = hashText(*use.TokenHash)
	}
	if use.IP.IsValid() {
		args.IP = use.IP.String()
	}
	if loc != nil {
		args.Located = true
		args.Label, args.City, args.Region, args.Country, args.Code = locationValues(*loc)
	}
	var out touchReply
	err := r.exec(ctx, scriptTouch, r.keys.ForSession(use.SessionID), c, args, &out)
	if err != nil {
		return sessionkit.Session{}, backend.Used{}, nil, err
	}
	s, ok := decodeSession(use.SessionID, out.Session)
	if !ok {
		return sessionkit.Session{}, backend.Used{}, nil, unavailable(scriptTouch.name, errReply)
	}
	used := backend.Used{Written: out.Written, Held: out.Held, Revoked: out.RevokedEvent != "", IPChanged: out.IPChanged}
	var events []sessionkit.Event
	ids := out.EventIDs
	if out.IPChanged {
		used.PreviousIP, _ = netip.ParseAddr(out.PreviousIP)
		used.PreviousCountry = out.PreviousCountry
		if len(ids) > 0 {
			events = append(events, sessionkit.Event{
				ID: ids[0], Type: sessionkit.EventIPChanged, SessionID: s.ID, UserID: s.UserID, At: c.Now,
				IPAddress: args.IP, PreviousIP: out.PreviousIP, Country: s.Location.CountryCode,
				PreviousCountry: out.PreviousCountry, Actor: s.ImpersonatedBy,
			})
			ids = ids[1:]
		}
	}
	if len(ids) > 0 {
		events = append(events, sessionkit.Event{
			ID: ids[0], Type: sessionkit.EventActivity, SessionID: s.ID, UserID: s.UserID, At: c.Now,
			IPAddress: s.LastIPAddress.String(), Actor: s.ImpersonatedBy,
		})
	}
	if used.Revoked {
		events = append(events, sessionkit.Event{
			ID: out.RevokedEvent, Type: sessionkit.EventRevoked, SessionID: s.ID, UserID: s.UserID, At: c.Now,
			Reason: sessionkit.ReasonIPChanged, Actor: s.ImpersonatedBy,
		})
	}
	return s, used, events, nil
}

// TouchAll implements sessionkit.Store: each session's touch script, as
// Touch runs it without a token hash or an address, all in one pipeline.
func (r *Redis) TouchAll(ctx context.Context, c backend.Call, ids []uuid.UUID) []error {
	_, errs := r.touchAll(ctx, c, ids)
	return errs
}

// activeValues reads the active records of ids, one pipeline of HGETs:
// "" where a session is not active or the read failed.
func (r *Redis) activeValues(ctx context.Context, ids []uuid.UUID) []string {
	cmds := make([]*redis.StringCmd, len(ids))
	// A failed read is an empty value: the caller sends that session's
	// script, which reports the failure.
	_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			key, member := r.keys.Active(id)
			cmds[i] = p.HGet(ctx, key, member)
		}
		return nil
	})
	vs := make([]string, len(ids))
	for i, cmd := range cmds {
		vs[i] = cmd.Val()
	}
	return vs
}

// touchAll is TouchAll, also returning the sessions as stored (the zero
// Session where its error is not nil).
func (r *Redis) touchAll(ctx context.Context, c backend.Call, ids []uuid.UUID) ([]sessionkit.Session, []error) {
	h := r.headerOf(c)
	keys, args := make([][]string, len(ids)), make([][]any, len(ids))
	all := make([]int, len(ids))
	for i, id := range ids {
		keys[i] = keysOf(r.keys.ForSession(id))
		args[i] = scriptTouch.argv(h, touchArgs{Member: sessionid.Member(id)})
		all[i] = i
	}
	cmds := make([]*redis.Cmd, len(ids))
	send := func(which []int) {
		// Each command's failure, the pipeline's included, is read from it.
		_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range which {
				cmds[i] = scriptTouch.run.EvalSha(ctx, p, keys[i], args[i]...)
			}
			return nil
		})
	}
	send(all)
	var missing []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 && scriptTouch.run.Load(ctx, r.c).Err() == nil {
		// A new server, or a flushed script cache: loaded (on every master
		// of a Cluster), the script runs for those in a second pipeline.
		send(missing)
	}
	ss, errs := make([]sessionkit.Session, len(ids)), make([]error, len(ids))
	for i, id := range ids {
		v, err := cmds[i].Result()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			// Flushed again meanwhile: Run loads it as it runs it.
			v, err = scriptTouch.run.Run(ctx, r.c, keys[i], args[i]...).Result()
		}
		var out touchReply
		if errs[i] = scriptTouch.result(v, err, &out); errs[i] != nil {
			continue
		}
		s, ok := decodeSession(id, out.Session)
		if !ok {
			errs[i] = unavailable(scriptTouch.name, errReply)
			continue
		}
		ss[i] = s
	}
	return ss, errs
}

// Revoke implements sessionkit.Store.
// newCall returns an id for one revocation call, which its script keeps
// in the trail entries it writes: run a second time for the call (go-redis
// resends a command whose reply it lost), the script finds them, and
// answers as its first run did (common.lua's revoked_by).
func newCall() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], mathrand.Uint64())
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (r *Redis) Revoke(ctx context.Context, c backend.Call, sessionID, userID uuid.UUID, reason, actor string) ([]sessionkit.Event, error) {
	tag := sessionid.TagIn(sessionID)
	if tag != sessionid.TagOf(userID) {
		return nil, sessionkit.ErrNotFound // the id is not in this user's slot
	}
	var out revokeReply
	err := r.exec(ctx, scriptRevoke, r.keys.ForTag(tag), c, revokeArgs{
		Member: sessionid.Member(sessionID), UserID: userID.String(), Reason: reason, Announce: announce.Head(tag),
		Actor: actor, Call: newCall(),
	}, &out)
	if err != nil {
		return nil, err
	}
	return []sessionkit.Event{{
		ID: out.EventID, Type: sessionkit.EventRevoked, SessionID: sessionID,
		UserID: userID, At: c.Now, Reason: reason, Actor: actor,
	}}, nil
}

// RevokeAll implements sessionkit.Store.
func (r *Redis) RevokeAll(ctx context.Context, c backend.Call, userID, except uuid.UUID, reason, actor string) ([]sessionkit.Event, error) {
	tag := sessionid.TagOf(userID)
	args := revokeAllArgs{UserID: userID.String(), Reason: reason, Announce: announce.Head(tag), Actor: actor, Call: newCall()}
	if except != uuid.Nil {
		args.Except = sessionid.Member(except)
	}
	var out revokeAllReply
	if err := r.exec(ctx, scriptRevokeAll, r.keys.ForTag(tag), c, args, &out); err != nil {
		return nil, err
	}
	if len(out.EventIDs) != len(out.Revoked) {
		return nil, unavailable(scriptRevokeAll.name, errReply)
	}
	var events []sessionkit.Event
	for i, m := range out.Revoked {
		sid, ok := sessionOf(tag, m)
		if !ok {
			continue
		}
		events = append(events, sessionkit.Event{
			ID: out.EventIDs[i], Type: sessionkit.EventRevoked, SessionID: sid,
			UserID: userID, At: c.Now, Reason: reason, Actor: actor,
		})
	}
	return events, nil
}

// RecordProvider implements sessionkit.Store.
func (r *Redis) RecordProvider(ctx context.Context, c backend.Call, sessionID uuid.UUID, provider string) (backend.Recorded, []sessionkit.Event, error) {
	var out providerReply
	err := r.exec(ctx, scriptProvider, r.keys.ForSession(sessionID), c, providerArgs{
		Member: sessionid.Member(sessionID), Provider: provider,
	}, &out)
	if err != nil {
		return backend.Recorded{}, nil, err
	}
	rec := backend.Recorded{Written: out.Written, First: out.First}
	if !out.Written {
		return rec, nil, nil
	}
	uid, _ := uuid.Parse(out.UserID)
	return rec, []sessionkit.Event{{
		ID: out.EventID, Type: sessionkit.EventProviderAccessed, SessionID: sessionID,
		UserID: uid, At: c.Now, Provider: provider, Actor: out.Actor,
	}}, nil
}

// LinkRefreshToken implements sessionkit.Store.
func (r *Redis) LinkRefreshToken(ctx context.Context, c backend.Call, sessionID uuid.UUID, refreshTokenID string) ([]sessionkit.Event, error) {
	var out linkReply
	err := r.exec(ctx, scriptLink, r.keys.ForSession(sessionID), c, linkArgs{
		Member: sessionid.Member(sessionID), RefreshTokenID: refreshTokenID,
	}, &out)
	if err != nil {
		return nil, err
	}
	uid, _ := uuid.Parse(out.UserID)
	return []sessionkit.Event{{
		ID: out.EventID, Type: sessionkit.EventRefreshLinked, SessionID: sessionID,
		UserID: uid, At: c.Now, RefreshTokenID: refreshTokenID,
	}}, nil
}

// Refresh implements sessionkit.Store.
func (r *Redis) Refresh(ctx context.Context, c backend.Call, in backend.Refresh) (sessionkit.Session, backend.Refreshed, []sessionkit.Event, error) {
	tag := sessionid.TagIn(in.SessionID)
	var out refreshReply
	args := refreshArgs{
		Member: sessionid.Member(in.SessionID), Generation: int64(in.Generation),
		Presented: hashText(in.Presented), Next: hashText(in.Next), Sealed: hashText(in.Sealed),
		Announce: announce.Head(tag), Call: newCall(),
	}
	if in.Family != nil {
		args.Family = storedHash(*in.Family)
	}
	err := r.exec(ctx, scriptRefresh, r.keys.ForTag(tag), c, args, &out)
	var reused *reusedError
	switch {
	case errors.As(err, &reused):
		return sessionkit.Session{}, backend.Refreshed{Reused: true}, []sessionkit.Event{{
			ID: reused.eventID, Type: sessionkit.EventRevoked, SessionID: in.SessionID,
			UserID: reused.userID, At: c.Now, Reason: sessionkit.ReasonRefreshReused,
		}}, nil
	case err != nil:
		return sessionkit.Session{}, backend.Refreshed{}, nil, err
	}
	s, ok := decodeSession(in.SessionID, out.Session)
	if !ok || out.Generation < 0 || out.Generation > token.MaxGeneration {
		return sessionkit.Session{}, backend.Refreshed{}, nil, unavailable(scriptRefresh.name, errReply)
	}
	res := backend.Refreshed{Rotated: out.Rotated, Generation: uint32(out.Generation)}
	if !out.Rotated && !decodeHashText(out.Sealed, &res.Sealed) {
		return sessionkit.Session{}, backend.Refreshed{}, nil, unavailable(scriptRefresh.name, errReply)
	}
	return s, res, nil, nil
}

// UpdateData implements sessionkit.Store: one script, which checks that the
// session is active and the bounds hold before it writes.
func (r *Redis) UpdateData(ctx context.Context, c backend.Call, sessionID uuid.UUID, key string, value *string, bounds backend.DataBounds) error {
	args := dataArgs{Member: sessionid.Member(sessionID), Key: key, Delete: value == nil, MaxKeys: bounds.Keys, MaxBytes: bounds.Bytes}
	if value != nil {
		args.Value = *value
	}
	var out dataReply
	return r.exec(ctx, scriptData, r.keys.ForSession(sessionID), c, args, &out)
}

// ReadData implements sessionkit.Store in one pipelined round trip: the
// session, to refuse one that is no longer active, and its data.
func (r *Redis) ReadData(ctx context.Context, sessionID uuid.UUID, key string, now time.Time) (string, bool, error) {
	u := r.keys.ForSession(sessionID)
	member := sessionid.Member(sessionID)
	var act, data *redis.StringCmd
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		act = p.HGet(ctx, u.Active, member)
		data = p.HGet(ctx, u.Data, member)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", false, unavailable("read session data", err)
	}
	s, ok := decodeSession(sessionID, act.Val())
	if act.Err() != nil || !ok {
		return "", false, sessionkit.ErrNotFound
	}
	if err := s.Err(now); err != nil {
		return "", false, err
	}
	if data.Err() != nil {
		return "", false, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(data.Val()), &m); err != nil {
		return "", false, unavailable("read session data", err)
	}
	v, ok := m[key]
	return v, ok, nil
}

// Rotate implements sessionkit.Store.
func (r *Redis) Rotate(ctx context.Context, c backend.Call, sessionID, userID uuid.UUID, cred backend.Credentials) (sessionkit.Session, uint32, error) {
	tag := sessionid.TagIn(sessionID)
	args := rotateArgs{Member: sessionid.Member(sessionID), UserID: userID.String(), TokenHash: storedHash(cred.TokenHash), Announce: announce.Head(tag)}
	if cred.RefreshHash != nil {
		args.RefreshHash = hashText(*cred.RefreshHash)
	}
	if cred.RefreshFamily != nil {
		args.Family = storedHash(*cred.RefreshFamily)
	}
	args.Reauth, args.AAL = cred.Reauthenticated, clean(cred.AAL)
	var out rotateReply
	if err := r.exec(ctx, scriptRotate, r.keys.ForTag(tag), c, args, &out); err != nil {
		return sessionkit.Session{}, 0, err
	}
	s, ok := decodeSession(sessionID, out.Session)
	if !ok || out.Generation < 0 || out.Generation > token.MaxGeneration {
		return sessionkit.Session{}, 0, unavailable(scriptRotate.name, errReply)
	}
	return s, uint32(out.Generation), nil
}

// Peek implements sessionkit.Store: one read-only command, an HGET of the
// session in the user's active sessions. Only a session that is not active
// costs a second round trip, for its retained record and revocation.
func (r *Redis) Peek(ctx context.Context, id uuid.UUID) (sessionkit.Session, backend.Peeked, error) {
	key, member := r.keys.Active(id)
	v, err := r.hget(ctx, key, member)
	active := err == nil
	rev := ""
	switch {
	case errors.Is(err, redis.Nil):
		v, rev, err = r.retained(ctx, r.keys.ForSession(id), member)
		if err != nil {
			return sessionkit.Session{}, backend.Peeked{}, unavailable("peek", err)
		}
	case err != nil:
		return sessionkit.Session{}, backend.Peeked{}, unavailable("peek", err)
	}
	var s sessionkit.Session
	pk := backend.Peeked{Indexed: active}
	if !decodePeek(id, v, &s, &pk) {
		return sessionkit.Session{}, backend.Peeked{}, sessionkit.ErrNotFound
	}
	if !active {
		var re *sessionkit.RevokedError
		if rev != "" && errors.As(revokedError(rev), &re) {
			s.RevokedAt, s.RevokedReason = re.At, re.Reason
		}
	}
	return s, pk, nil
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
	member := sessionid.Member(id)
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
	tag := sessionid.TagOf(userID)
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
