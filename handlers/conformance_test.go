package handlers_test

// Every route's actual answers, success and
// error, checked against openapi.json: the status is documented for the
// operation, the Content-Type is the documented one, and the body
// validates against the documented schema (required, types, enum, const,
// format, pattern, minimum, oneOf). Every problem answer must also carry
// Cache-Control: no-store and Vary: Cookie.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
)

type spec struct {
	root map[string]any
}

func loadSpec(t *testing.T) spec {
	t.Helper()
	raw, err := os.ReadFile("../openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	return spec{root}
}

func (s spec) deref(v any) any {
	for i := 0; i < 10; i++ {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return v
		}
		var node any = s.root
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			node = node.(map[string]any)[part]
		}
		v = node
	}
	return v
}

// response returns the documented response of "METHOD /path" for status.
func (s spec) response(route string, status int) (map[string]any, bool) {
	method, path, _ := strings.Cut(route, " ")
	item, _ := s.root["paths"].(map[string]any)[path].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	if op == nil {
		return nil, false
	}
	resp, ok := op["responses"].(map[string]any)[strconv.Itoa(status)]
	if !ok {
		return nil, false
	}
	return s.deref(resp).(map[string]any), true
}

var (
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// validate checks v against schema and returns the mismatches.
func (s spec) validate(at string, schema any, v any) []string {
	sch, _ := s.deref(schema).(map[string]any)
	if sch == nil {
		return nil
	}
	var errs []string
	if alts, ok := sch["oneOf"].([]any); ok {
		n := 0
		var all []string
		for _, alt := range alts {
			e := s.validate(at, alt, v)
			if len(e) == 0 {
				n++
			}
			all = append(all, e...)
		}
		if n != 1 {
			errs = append(errs, fmt.Sprintf("%s: matches %d of oneOf (%v)", at, n, all))
		}
	}
	if typ, ok := sch["type"]; ok {
		var types []string
		switch tt := typ.(type) {
		case string:
			types = []string{tt}
		case []any:
			for _, x := range tt {
				types = append(types, x.(string))
			}
		}
		if !slices.Contains(types, jsonTypeOf(v)) && !(jsonTypeOf(v) == "integer" && slices.Contains(types, "number")) {
			return append(errs, fmt.Sprintf("%s: type %s, want %v (value %v)", at, jsonTypeOf(v), types, v))
		}
	}
	if c, ok := sch["const"]; ok && c != v {
		errs = append(errs, fmt.Sprintf("%s: %v, want const %v", at, v, c))
	}
	if e, ok := sch["enum"].([]any); ok && !slices.Contains(e, v) {
		errs = append(errs, fmt.Sprintf("%s: %v not in enum %v", at, v, e))
	}
	if str, ok := v.(string); ok {
		switch sch["format"] {
		case "uuid":
			if !uuidRE.MatchString(str) {
				errs = append(errs, fmt.Sprintf("%s: %q is not a uuid", at, str))
			}
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %q is not a date-time", at, str))
			}
		}
		if p, ok := sch["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			errs = append(errs, fmt.Sprintf("%s: %q does not match %s", at, str, p))
		}
		if ml, ok := sch["minLength"].(float64); ok && float64(len(str)) < ml {
			errs = append(errs, fmt.Sprintf("%s: shorter than %v", at, ml))
		}
	}
	if n, ok := v.(float64); ok {
		if mn, ok := sch["minimum"].(float64); ok && n < mn {
			errs = append(errs, fmt.Sprintf("%s: %v below minimum %v", at, n, mn))
		}
		if mx, ok := sch["maximum"].(float64); ok && n > mx {
			errs = append(errs, fmt.Sprintf("%s: %v above maximum %v", at, n, mx))
		}
	}
	if obj, ok := v.(map[string]any); ok {
		req, _ := sch["required"].([]any)
		for _, r := range req {
			if _, ok := obj[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required %q missing", at, r))
			}
		}
		props, _ := sch["properties"].(map[string]any)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p, ok := props[k]; ok {
				errs = append(errs, s.validate(at+"."+k, p, obj[k])...)
			} else if props != nil {
				errs = append(errs, fmt.Sprintf("%s: undocumented field %q", at, k))
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := sch["items"]; ok {
			for i, x := range arr {
				errs = append(errs, s.validate(fmt.Sprintf("%s[%d]", at, i), items, x)...)
			}
		}
	}
	return errs
}

func jsonTypeOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "?"
}

// check validates one answer r of route against the document.
func (s spec) check(route string, r response) []string {
	var errs []string
	resp, ok := s.response(route, r.status)
	ct := r.header.Get("Content-Type")
	if r.status >= 400 {
		if ct != "application/problem+json" {
			errs = append(errs, fmt.Sprintf("%d: Content-Type %q, want application/problem+json", r.status, ct))
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			errs = append(errs, fmt.Sprintf("%d: Cache-Control %q, want no-store", r.status, cc))
		}
		if v := strings.Join(r.header.Values("Vary"), ", "); !strings.Contains(v, "Cookie") {
			errs = append(errs, fmt.Sprintf("%d: Vary %q, want Cookie", r.status, v))
		}
		if r.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
			errs = append(errs, "401 without WWW-Authenticate (RFC 9110 §15.5.2)")
		}
	}
	if !ok {
		return append(errs, fmt.Sprintf("status %d is not documented (body %s)", r.status, strings.TrimSpace(string(r.body))))
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(r.body) != 0 {
			errs = append(errs, fmt.Sprintf("%d: documented without a body, got %q", r.status, r.body))
		}
		return errs
	}
	media, ok := content[ct].(map[string]any)
	if !ok {
		return append(errs, fmt.Sprintf("%d: Content-Type %q not documented (have %v)", r.status, ct, keysOf(content)))
	}
	var body any
	if err := json.Unmarshal(r.body, &body); err != nil {
		return append(errs, fmt.Sprintf("%d: body not JSON: %v", r.status, err))
	}
	return append(errs, s.validate(strconv.Itoa(r.status), media["schema"], body)...)
}

func keysOf(m map[string]any) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	return k
}

func TestResponsesConformToOpenAPI(t *testing.T) {
	doc := loadSpec(t)
	f := newFixture(t, tokenSetup(t))
	f.users.ids["carol"] = operatorID
	admin, err := handlers.NewAdmin(f.auth, handlers.AdminOptions{Authorize: func(r *http.Request) (string, error) {
		s, _ := sessionkit.FromContext(r.Context())
		if s.UserID != operatorID {
			return "", errors.New("no")
		}
		return "support (carol)", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	admin.Mount(f.mux)

	c, other, op := f.client(t), f.client(t), f.client(t)
	mine, _ := f.login(t, c, "alice")
	o, _ := f.login(t, other, "alice")
	f.login(t, op, "carol")
	pair, _ := f.tokenLogin(t, "alice")
	big := strings.Repeat("x", handlers.DefaultMaxBodyBytes+1)
	creds := `{"username":"alice","password":"password"}`
	cross := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Content-Type": {"application/json"}}
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	text := http.Header{"Content-Type": {"text/plain"}}
	alice := "/admin/users/" + f.alice.String()

	type call struct {
		route, name  string
		client       *http.Client
		method, path string
		body         string
		header       http.Header
	}
	calls := []call{
		{"POST /sessions", "ok", f.client(t), "POST", "/sessions", creds, jsonType},
		{"POST /sessions", "missing fields", nil, "POST", "/sessions", `{}`, jsonType},
		{"POST /sessions", "bad creds", nil, "POST", "/sessions", `{"username":"alice","password":"no"}`, jsonType},
		{"POST /sessions", "cross-site", nil, "POST", "/sessions", creds, cross},
		{"POST /sessions", "too large", nil, "POST", "/sessions", big, jsonType},
		{"POST /sessions", "text/plain", nil, "POST", "/sessions", creds, text},
		{"GET /sessions", "ok", c, "GET", "/sessions?include_revoked=true", "", nil},
		{"GET /sessions", "bad param", c, "GET", "/sessions?include_revoked=maybe", "", nil},
		{"GET /sessions", "no session", nil, "GET", "/sessions", "", nil},
		{"GET /sessions/current", "ok", c, "GET", "/sessions/current", "", nil},
		{"GET /sessions/current", "bearer", nil, "GET", "/sessions/current", "", bearer(pair.AccessToken)},
		{"GET /sessions/current", "no session", nil, "GET", "/sessions/current", "", nil},
		{"GET /sessions/events", "ok", c, "GET", "/sessions/events?limit=2", "", nil},
		{"GET /sessions/events", "bad limit", c, "GET", "/sessions/events?limit=0", "", nil},
		{"GET /sessions/events", "no session", nil, "GET", "/sessions/events", "", nil},
		{"GET /sessions/{id}", "ok", c, "GET", "/sessions/" + o.ID.String(), "", nil},
		{"GET /sessions/{id}", "bad id", c, "GET", "/sessions/nope", "", nil},
		{"GET /sessions/{id}", "unknown", c, "GET", "/sessions/" + uuid.NewString(), "", nil},
		{"GET /sessions/{id}", "no session", nil, "GET", "/sessions/" + o.ID.String(), "", nil},
		{"DELETE /sessions/{id}", "current", c, "DELETE", "/sessions/" + mine.ID.String(), "", nil},
		{"DELETE /sessions/{id}", "unknown", c, "DELETE", "/sessions/" + uuid.NewString(), "", nil},
		{"DELETE /sessions/{id}", "cross-site", c, "DELETE", "/sessions/" + o.ID.String(), "", cross},
		{"DELETE /sessions/{id}", "no session", nil, "DELETE", "/sessions/" + o.ID.String(), "", nil},
		{"POST /sessions/token", "ok", nil, "POST", "/sessions/token", creds, jsonType},
		{"POST /sessions/token", "bad creds", nil, "POST", "/sessions/token", `{"username":"alice","password":"no"}`, jsonType},
		{"POST /sessions/token", "text/plain", nil, "POST", "/sessions/token", creds, text},
		{"POST /sessions/token", "too large", nil, "POST", "/sessions/token", big, jsonType},
		{"POST /sessions/refresh", "ok", nil, "POST", "/sessions/refresh", `{"refresh_token":"` + pair.RefreshToken + `"}`, jsonType},
		{"POST /sessions/refresh", "unknown", nil, "POST", "/sessions/refresh", `{"refresh_token":"nope"}`, jsonType},
		{"POST /sessions/refresh", "missing", nil, "POST", "/sessions/refresh", `{}`, jsonType},
		{"GET /sessions/jwks.json", "ok", nil, "GET", "/sessions/jwks.json", "", nil},
		{"POST /sessions/current/reauthenticate", "ok", c, "POST", "/sessions/current/reauthenticate", creds, jsonType},
		{"POST /sessions/current/reauthenticate", "bad creds", c, "POST", "/sessions/current/reauthenticate", `{"username":"alice","password":"no"}`, jsonType},
		{"POST /sessions/current/reauthenticate", "no session", nil, "POST", "/sessions/current/reauthenticate", creds, jsonType},
		{"GET /admin/users/{user_id}/sessions", "ok", op, "GET", alice + "/sessions", "", nil},
		{"GET /admin/users/{user_id}/sessions", "not operator", c, "GET", alice + "/sessions", "", nil},
		{"GET /admin/users/{user_id}/sessions", "bad user", op, "GET", "/admin/users/x/sessions", "", nil},
		{"GET /admin/users/{user_id}/sessions", "no session", nil, "GET", alice + "/sessions", "", nil},
		{"GET /admin/users/{user_id}/events", "ok", op, "GET", alice + "/events", "", nil},
		{"PUT /admin/users/{user_id}/limit", "ok", op, "PUT", alice + "/limit", `{"limit":5}`, jsonType},
		{"PUT /admin/users/{user_id}/limit", "form", op, "PUT", alice + "/limit", `limit=5`, form},
		{"PUT /admin/users/{user_id}/limit", "text", op, "PUT", alice + "/limit", `5`, text},
		{"DELETE /admin/users/{user_id}/limit", "ok", op, "DELETE", alice + "/limit", "", nil},
		{"DELETE /admin/users/{user_id}/sessions/{id}", "unknown", op, "DELETE", alice + "/sessions/" + uuid.NewString(), "", nil},
		{"DELETE /admin/users/{user_id}/sessions/{id}", "ok", op, "DELETE", alice + "/sessions/" + o.ID.String(), `{"reason":"fraud"}`, jsonType},
		{"POST /admin/users/{user_id}/impersonate", "ok", f.loggedIn(t, "carol"), "POST", alice + "/impersonate", "", nil},
		{"DELETE /admin/users/{user_id}/sessions", "ok", op, "DELETE", alice + "/sessions", "", nil},
		{"DELETE /sessions", "no session", nil, "DELETE", "/sessions", "", nil},
		{"DELETE /sessions/current", "ok", other, "DELETE", "/sessions/current", "", nil},
		{"DELETE /sessions/current", "cross-site", other, "DELETE", "/sessions/current", "", cross},
	}
	for _, cl := range calls {
		t.Run(cl.route+"/"+cl.name, func(t *testing.T) {
			r := f.do(t, cl.client, cl.method, cl.path, strings.NewReader(cl.body), cl.header)
			t.Logf("%d %s", r.status, r.header.Get("Content-Type"))
			for _, e := range doc.check(cl.route, r) {
				t.Error(e)
			}
		})
	}
}

// loggedIn is a new client signed in as user.
func (f *fixture) loggedIn(t *testing.T, user string) *http.Client {
	c := f.client(t)
	f.login(t, c, user)
	return c
}
