package handlers_test

import (
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/middleware"
)

// openAPI is the part of the document the tests read.
type openAPI struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

type operation struct {
	Responses map[string]json.RawMessage `json:"responses"`
	Security  []map[string][]string      `json:"security"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func readOpenAPI(t *testing.T) (openAPI, []byte) {
	t.Helper()
	raw, err := os.ReadFile("../openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc, raw
}

// documented returns the document's operations as "METHOD /path".
func documented(t *testing.T, doc openAPI) map[string]operation {
	t.Helper()
	ops := map[string]operation{}
	for path, item := range doc.Paths {
		for key, raw := range item {
			if !slices.Contains(httpMethods, key) {
				continue // "parameters", "summary", ...
			}
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", key, path, err)
			}
			ops[strings.ToUpper(key)+" "+path] = op
		}
	}
	return ops
}

func TestOpenAPIListsExactlyTheServedRoutes(t *testing.T) {
	doc, raw := readOpenAPI(t)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi: got %q, want 3.1.0", doc.OpenAPI)
	}
	ops := documented(t, doc)
	served := map[string]handlers.Route{}
	for _, rt := range append(handlers.Routes(), handlers.AdminRoutes()...) {
		served[rt.Pattern()] = rt
	}
	for p := range ops {
		if _, ok := served[p]; !ok {
			t.Errorf("documented but not served: %s", p)
		}
	}
	for p, rt := range served {
		op, ok := ops[p]
		if !ok {
			t.Errorf("served but not documented: %s", p)
			continue
		}
		if _, ok := op.Responses["401"]; rt.Session && !ok {
			t.Errorf("%s needs a session but documents no 401", p)
		}
		if _, ok := op.Responses["403"]; rt.CrossOrigin && !ok {
			t.Errorf("%s is cross-origin protected but documents no 403", p)
		}
		if _, ok := op.Responses["503"]; !ok {
			t.Errorf("%s documents no 503", p)
		}
	}

	// Every $ref points at a defined component.
	var whole map[string]any
	json.Unmarshal(raw, &whole)
	for _, ref := range refs(whole) {
		parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
		var node any = whole
		for _, part := range parts {
			m, ok := node.(map[string]any)
			if !ok {
				node = nil
				break
			}
			node = m[part]
		}
		if node == nil {
			t.Errorf("unresolved $ref %q", ref)
		}
	}
}

func refs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				out = append(out, s)
			} else {
				out = append(out, refs(x)...)
			}
		}
	case []any:
		for _, x := range v {
			out = append(out, refs(x)...)
		}
	}
	return out
}

// TestOpenAPIRoutesAreServed calls every documented route on a live server
// and expects the success status the document gives it.
func TestOpenAPIRoutesAreServed(t *testing.T) {
	doc, _ := readOpenAPI(t)
	f := newFixture(t, tokenSetup(t))
	f.users.ids["carol"] = operatorID
	admin, err := handlers.NewAdmin(f.auth, handlers.AdminOptions{Authorize: func(*http.Request) (string, error) { return "tester", nil }})
	if err != nil {
		t.Fatal(err)
	}
	admin.Mount(f.mux)
	for p, op := range documented(t, doc) {
		t.Run(p, func(t *testing.T) {
			var success []string
			for code := range op.Responses {
				if code[0] == '2' {
					success = append(success, code)
				}
			}
			if len(success) != 1 {
				t.Fatalf("success responses: got %v, want one", success)
			}
			c, other := f.client(t), f.client(t)
			f.login(t, c, "alice")
			o, _ := f.login(t, other, "alice")
			method, path, _ := strings.Cut(p, " ")
			path = strings.ReplaceAll(path, "{id}", o.ID.String())
			path = strings.ReplaceAll(path, "{user_id}", f.alice.String())
			var body *strings.Reader
			switch {
			case p == "POST /sessions/refresh":
				pair, _ := f.tokenLogin(t, "alice")
				body = strings.NewReader(`{"refresh_token":"` + pair.RefreshToken + `"}`)
			case p == "PUT /admin/users/{user_id}/limit":
				body = strings.NewReader(`{"limit": 3}`)
			case p == "POST /admin/users/{user_id}/impersonate":
				body = strings.NewReader("")
			case method == "POST":
				body = strings.NewReader(`{"username":"alice","password":"password"}`)
			default:
				body = strings.NewReader("")
			}
			r := f.do(t, c, method, path, body, jsonType)
			if got, want := r.status, success[0]; strconv.Itoa(got) != want {
				t.Errorf("got %d (%s), want %s", got, r.body, want)
			}
		})
	}
}

// TestOpenAPISchemasMatchTheWireTypes keeps the schemas' property names in
// step with the JSON the handlers send.
func TestOpenAPISchemasMatchTheWireTypes(t *testing.T) {
	doc, _ := readOpenAPI(t)
	for name, typ := range map[string]reflect.Type{
		"Session":  reflect.TypeFor[handlers.SessionJSON](),
		"Device":   reflect.TypeFor[handlers.DeviceJSON](),
		"Location": reflect.TypeFor[handlers.LocationJSON](),
		"Event":    reflect.TypeFor[sessionkit.Event](),
		"Problem":  reflect.TypeFor[middleware.Problem](),
	} {
		t.Run(name, func(t *testing.T) {
			schema, ok := doc.Components.Schemas[name]
			if !ok {
				t.Fatalf("no schema %s", name)
			}
			var want []string
			for i := range typ.NumField() {
				tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
				if tag != "" && tag != "-" {
					want = append(want, tag)
				}
			}
			var got []string
			for k := range schema.Properties {
				got = append(got, k)
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("properties: got %v, want %v", got, want)
			}
		})
	}
}

func TestRoutesTableIsWhatTheMuxServes(t *testing.T) {
	f := newFixture(t, setup{})
	c := f.client(t)
	f.login(t, c, "alice")
	for _, rt := range handlers.Routes() {
		path := strings.ReplaceAll(rt.Path, "{id}", "00000000-0000-0000-0000-000000000000")
		r := f.do(t, nil, rt.Method, path, strings.NewReader("{}"), jsonType)
		if r.status == http.StatusMethodNotAllowed || (r.status == http.StatusNotFound && r.problem(t).Detail == "No such route.") {
			t.Errorf("%s: got %d (%s), want the route served", rt.Pattern(), r.status, r.body)
		}
		if rt.Session && r.status != http.StatusUnauthorized {
			t.Errorf("%s without a session: got %d, want 401", rt.Pattern(), r.status)
		}
	}
}
