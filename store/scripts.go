package store

import (
	_ "embed"
)

// The scripts, each with its arguments (after the header) and its S_OK
// reply, declared by name (see contract.go).

var (
	//go:embed lua/common.lua
	luaCommon string
	//go:embed lua/create.lua
	luaCreate string
	//go:embed lua/touch.lua
	luaTouch string
	//go:embed lua/revoke.lua
	luaRevoke string
	//go:embed lua/revoke_all.lua
	luaRevokeAll string
	//go:embed lua/provider.lua
	luaProvider string
	//go:embed lua/link.lua
	luaLink string
	//go:embed lua/refresh.lua
	luaRefresh string
	//go:embed lua/data.lua
	luaData string
	//go:embed lua/rotate.lua
	luaRotate string
	//go:embed lua/clear_sealed.lua
	luaClearSealed string
)

var (
	scriptCreate    = newScript[createArgs, createReply]("create", luaCreate)
	scriptTouch     = newScript[touchArgs, touchReply]("touch", luaTouch)
	scriptRevoke    = newScript[revokeArgs, revokeReply]("revoke", luaRevoke)
	scriptRevokeAll = newScript[revokeAllArgs, revokeAllReply]("revoke all", luaRevokeAll)
	scriptProvider  = newScript[providerArgs, providerReply]("record provider", luaProvider)
	scriptLink      = newScript[linkArgs, linkReply]("link refresh token", luaLink)
	scriptRefresh   = newScript[refreshArgs, refreshReply]("refresh", luaRefresh)
	scriptData      = newScript[dataArgs, dataReply]("session data", luaData)
	scriptRotate    = newScript[rotateArgs, rotateReply]("rotate", luaRotate)
	scriptClear     = newScript[clearSealedArgs, clearSealedReply]("clear sealed refresh secrets", luaClearSealed)

	scripts = []*script{scriptCreate, scriptTouch, scriptRevoke, scriptRevokeAll, scriptProvider, scriptLink, scriptRefresh, scriptData, scriptRotate, scriptClear}
)

type createArgs struct {
	Member         string `lua:"MEMBER"`
	Limit          int    `lua:"LIMIT"`           // Unlimited (-1) for none; a stored override wins
	Reject         bool   `lua:"REJECT"`          // at the limit, refuse (S_LIMIT_REACHED) rather than evict
	ImpersonatedBy string `lua:"IMPERSONATED_BY"` // an operator's label: the session is outside the limit
	UserID         string `lua:"USER_ID"`
	Device         string `lua:"DEVICE"`  // the device label, for the new-device signal
	Country        string `lua:"COUNTRY"` // the country code, for the new-country signal
	IP             string `lua:"IP"`
	Announce       string `lua:"ANNOUNCE"` // the head of an announcement of evictions
	Value          string `lua:"VALUE"`    // the stored session (codec.go)
}

type createReply struct {
	NewDevice  bool     `lua:"NEW_DEVICE"`
	NewCountry bool     `lua:"NEW_COUNTRY"`
	Evicted    []string `lua:"EVICTED"`   // members
	EventIDs   []string `lua:"EVENT_IDS"` // one per eviction, then the creation
}

type touchArgs struct {
	Member    string `lua:"MEMBER"`
	TokenHash string `lua:"TOKEN_HASH"` // '' for no token check
	IP        string `lua:"IP"`         // '' for no address check
	Hold      bool   `lua:"HOLD"`       // on an address change, write nothing and reply HELD
	Revoke    bool   `lua:"REVOKE"`     // record the address change and revoke the session, in one step
	From      string `lua:"FROM"`       // the address a change was decided from: if another is stored, hold again
	Announce  string `lua:"ANNOUNCE"`   // with Revoke or IP: where a revocation or a recorded address change is announced
	Call      string `lua:"CALL"`       // with Revoke: this call's id (newCall), kept in the trail entries it writes
	Located   bool   `lua:"LOCATED"`    // the LOCATION_* fields hold the new address's location
	Label     string `lua:"LOCATION_LABEL"`
	City      string `lua:"LOCATION_CITY"`
	Region    string `lua:"LOCATION_REGION"`
	Country   string `lua:"LOCATION_COUNTRY"`
	Code      string `lua:"LOCATION_COUNTRY_CODE"`
}

type touchReply struct {
	Written         bool     `lua:"WRITTEN"`
	IPChanged       bool     `lua:"IP_CHANGED"`
	PreviousIP      string   `lua:"PREVIOUS_IP"`
	PreviousCountry string   `lua:"PREVIOUS_COUNTRY"`
	Session         string   `lua:"SESSION"`       // as stored after the touch
	EventIDs        []string `lua:"EVENT_IDS"`     // the address change's, then the activity's
	Held            bool     `lua:"HELD"`          // HOLD stopped at an address change: nothing written
	RevokedEvent    string   `lua:"REVOKED_EVENT"` // REVOKE: the revocation's event id
}

type revokeArgs struct {
	Member   string `lua:"MEMBER"`
	UserID   string `lua:"USER_ID"`
	Reason   string `lua:"REASON"`
	Announce string `lua:"ANNOUNCE"`
	Actor    string `lua:"ACTOR"` // the operator who revoked, or ''
	Call     string `lua:"CALL"`  // this call's id (newCall), kept in its trail entries
}

type revokeReply struct {
	EventID string `lua:"EVENT_ID"`
}

type revokeAllArgs struct {
	Except   string `lua:"EXCEPT"` // a member to keep, or ''
	UserID   string `lua:"USER_ID"`
	Reason   string `lua:"REASON"`
	Announce string `lua:"ANNOUNCE"`
	Actor    string `lua:"ACTOR"` // the operator who revoked, or ''
	Call     string `lua:"CALL"`  // this call's id (newCall), kept in its trail entries
}

type revokeAllReply struct {
	Revoked  []string `lua:"REVOKED"` // members
	EventIDs []string `lua:"EVENT_IDS"`
}

type providerArgs struct {
	Member   string `lua:"MEMBER"`
	Provider string `lua:"PROVIDER"`
}

type providerReply struct {
	Written bool   `lua:"WRITTEN"`
	First   bool   `lua:"FIRST"`
	UserID  string `lua:"USER_ID"`
	EventID string `lua:"EVENT_ID"` // '' when not written
	Actor   string `lua:"ACTOR"`    // the operator of a support session, or ''
}

type linkArgs struct {
	Member         string `lua:"MEMBER"`
	RefreshTokenID string `lua:"REFRESH_TOKEN_ID"`
}

type linkReply struct {
	UserID  string `lua:"USER_ID"`
	EventID string `lua:"EVENT_ID"`
}

type refreshArgs struct {
	Member     string `lua:"MEMBER"`
	Generation int64  `lua:"GENERATION"` // of the presented token
	Presented  string `lua:"PRESENTED"`  // its hashed secret
	Family     string `lua:"FAMILY"`     // its hashed family (storedHash), or '' for a token from before families
	Next       string `lua:"NEXT"`       // the successor's hashed secret
	Sealed     string `lua:"SEALED"`     // the successor's secret, sealed with the presented one
	Announce   string `lua:"ANNOUNCE"`   // the head of the announcement of a rotation, or of a revocation for reuse
	Call       string `lua:"CALL"`       // this call's id (newCall), kept in the trail entry of a revocation for reuse
}

type refreshReply struct {
	Rotated    bool   `lua:"ROTATED"`    // false: the current token is handed out again
	Generation int64  `lua:"GENERATION"` // the current token's
	Sealed     string `lua:"SEALED"`     // when not rotated: the current secret, sealed with the presented one
	Session    string `lua:"SESSION"`    // as stored after the call
}

type dataArgs struct {
	Member   string `lua:"MEMBER"`
	Key      string `lua:"KEY"`
	Value    string `lua:"VALUE"`
	Delete   bool   `lua:"DELETE"`
	MaxKeys  int    `lua:"MAX_KEYS"`
	MaxBytes int    `lua:"MAX_BYTES"` // keys and values together
}

type dataReply struct {
	Keys int64 `lua:"KEYS_STORED"`
}

type rotateArgs struct {
	Member      string `lua:"MEMBER"`
	UserID      string `lua:"USER_ID"`         // the owner: another user's session is S_NOT_FOUND
	TokenHash   string `lua:"TOKEN_HASH"`      // the new session token's hashed secret
	RefreshHash string `lua:"REFRESH_HASH"`    // a new refresh secret, hashed: used if the session is a bearer one
	Family      string `lua:"REFRESH_FAMILY"`  // with it, a new refresh token family's secret, hashed (storedHash)
	Reauth      bool   `lua:"REAUTHENTICATED"` // the credentials were just checked again
	AAL         string `lua:"AAL"`             // the new assurance level, or '' to keep it
	Announce    string `lua:"ANNOUNCE"`        // caches elsewhere drop the session
}

type rotateReply struct {
	Session    string `lua:"SESSION"`    // as stored after the rotation
	Generation int64  `lua:"GENERATION"` // the new refresh token's
}

type clearSealedArgs struct{}

type clearSealedReply struct {
	Cleared int64 `lua:"CLEARED"` // records whose sealed secret was blanked
}
