package sessionkit

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestExportedAPI lists the root package's exported top-level identifiers
// (each func, type, const and var) and compares them with
// testdata/api.txt, so that the public API grows or shrinks only on
// purpose: a change here is a change for every app, and goes in
// CHANGELOG.md. Run with SESSIONKIT_UPDATE_API=1 to rewrite the file.
func TestExportedAPI(t *testing.T) {
	fs := token.NewFileSet()
	var got []string
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fs, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					got = append(got, "func "+d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							got = append(got, "type "+s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								got = append(got, d.Tok.String()+" "+n.Name)
							}
						}
					}
				}
			}
		}
	}
	slices.Sort(got)
	text := strings.Join(got, "\n") + "\n"
	if os.Getenv("SESSIONKIT_UPDATE_API") == "1" {
		if err := os.WriteFile("testdata/api.txt", []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/api.txt")
	if err != nil {
		t.Fatal(err)
	}
	if text != string(want) {
		for _, line := range got {
			if !strings.Contains("\n"+string(want), "\n"+line+"\n") {
				t.Errorf("new exported identifier: %s", line)
			}
		}
		for line := range strings.Lines(string(want)) {
			if !slices.Contains(got, strings.TrimSpace(line)) {
				t.Errorf("exported identifier gone: %s", strings.TrimSpace(line))
			}
		}
		t.Errorf("the root package exports %d identifiers; testdata/api.txt lists a different set: "+
			"update it (SESSIONKIT_UPDATE_API=1 go test -run TestExportedAPI .) and say why in CHANGELOG.md", len(got))
	}
	t.Logf("the root package exports %d top-level identifiers", len(got))
}
