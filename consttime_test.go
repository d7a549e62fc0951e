package sessionkit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestDigestsComparedInConstantTime guards, in the source, that no
// comparison of a digest (a token's or refresh token's SHA-256, whole or
// the 17 bytes a cache entry keeps, a family's) can end at the first byte
// that differs: Go's == on arrays and bytes.Equal may, and the time a
// refusal takes would then tell how much of a guessed digest matched.
// Every library package of the module (tests aside) is type-checked, and
// each ==, != (a string conversion of one too), switch on one, and
// bytes.Equal, bytes.Compare, slices.Equal or slices.Compare of one, where
// one is a value that is, or holds, a byte array of 17 bytes or more,
// fails the test, unless the other side is the zero value written out
// ([32]byte{}, T{}): that tells only whether a digest is set. A digest
// held only in a []byte (a hash.Hash's Sum) is not known by its type and
// not checked: the library keeps digests in arrays. Such digests are compared with subtle.ConstantTimeCompare
// (internal/backend, tokens.go). Session ids (16 bytes) are not secret and
// are not checked. The Lua scripts, which compare digests of the two
// digests (same() and lookup in store/lua/common.lua), have a check of
// their own: store's TestScriptsCompareDigestsThroughDigests.
func TestDigestsComparedInConstantTime(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the module")
	}
	pkgs := listPackages(t)
	fset := token.NewFileSet()
	exports := map[string]string{}
	for _, p := range pkgs {
		exports[p.ImportPath] = p.Export
	}
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok || file == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	})
	checked := 0
	for _, p := range pkgs {
		if p.Module == nil || !p.Module.Main || len(p.GoFiles) == 0 {
			continue
		}
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		for _, found := range earlyExitDigestComparisons(t, fset, imp, p.ImportPath, files) {
			t.Errorf("%s; use subtle.ConstantTimeCompare", found)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("checked %d packages of the module; the listing found too few", checked)
	}

	// The check itself finds what it is for, and lets the rest be.
	src := `package p

import (
	"bytes"
	"crypto/sha256"
	"slices"
)

type state struct {
	Hash [32]byte
	Gen  uint32
}

func f(a, b [32]byte, p [17]byte, s, z state, id, other [16]byte, pa *[32]byte) bool {
	h := sha256.Sum256(nil)
	return a == b || // flagged
		h != a || // flagged
		bytes.Equal(a[:], b[:]) || // flagged
		s == z || // flagged
		p == [17]byte{} || a != ([32]byte{}) || s == (state{}) || // the zero value: not flagged
		id == other || pa == nil || s.Gen == z.Gen || // not digests: not flagged
		slices.Equal(a[:], b[:]) || // flagged
		string(a[:]) == string(b[:]) // flagged
}

func g(a, b [32]byte) int {
	switch a { // flagged
	case b:
		return 1
	}
	switch {
	case a == ([32]byte{}): // the zero value: not flagged
		return 2
	}
	return 0
}
`
	f, err := parser.ParseFile(fset, "p.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, found := range earlyExitDigestComparisons(t, fset, imp, "p", []*ast.File{f}) {
		lines = append(lines, found.line)
	}
	if want := []int{16, 17, 18, 19, 22, 23, 27}; !slices.Equal(lines, want) {
		t.Errorf("the check flagged lines %v of its own example, want %v", lines, want)
	}
}

// digestFinding is a comparison of a digest that may end early.
type digestFinding struct {
	pos  string
	line int
	what string
}

func (d digestFinding) String() string {
	return fmt.Sprintf("%s: %s compares a digest in time that depends on its contents", d.pos, d.what)
}

// earlyExitDigestComparisons type-checks files, the package path, and
// returns its comparisons of digests that may end early (see
// TestDigestsComparedInConstantTime).
func earlyExitDigestComparisons(t *testing.T, fset *token.FileSet, imp types.Importer, path string, files []*ast.File) []digestFinding {
	t.Helper()
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Uses: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: imp}
	if _, err := conf.Check(path, fset, files, info); err != nil {
		t.Fatalf("type-checking %s: %v", path, err)
	}
	var out []digestFinding
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			for _, what := range digestComparisons(n, info) {
				pos := fset.Position(n.Pos())
				out = append(out, digestFinding{pos: pos.String(), line: pos.Line, what: what})
			}
			return true
		})
	}
	return out
}

// digestComparisons returns what n compares early-exiting that holds a
// digest (see TestDigestsComparedInConstantTime), as source text.
func digestComparisons(n ast.Node, info *types.Info) []string {
	var operands []ast.Expr
	what := ""
	switch n := n.(type) {
	case *ast.BinaryExpr:
		if n.Op != token.EQL && n.Op != token.NEQ {
			return nil
		}
		if zeroLiteral(n.X) || zeroLiteral(n.Y) {
			return nil
		}
		operands, what = []ast.Expr{n.X, n.Y}, n.Op.String()
	case *ast.CallExpr:
		sel, ok := n.Fun.(*ast.SelectorExpr)
		if !ok {
			return nil
		}
		fn, ok := info.Uses[sel.Sel].(*types.Func)
		if !ok || fn.Pkg() == nil || (fn.Pkg().Path() != "bytes" && fn.Pkg().Path() != "slices") ||
			(fn.Name() != "Equal" && fn.Name() != "Compare") {
			return nil
		}
		for _, a := range n.Args {
			// A slice of a digest array: a[:], a[:n].
			if s, ok := ast.Unparen(a).(*ast.SliceExpr); ok {
				a = s.X
			}
			operands = append(operands, a)
		}
		what = fn.Pkg().Name() + "." + fn.Name()
	case *ast.SwitchStmt:
		// switch a { case b: }: each case is an ==.
		if n.Tag == nil {
			return nil
		}
		operands, what = []ast.Expr{n.Tag}, "switch"
	default:
		return nil
	}
	for _, o := range operands {
		// string(a[:]): a digest converted, and compared as a string.
		if c, ok := ast.Unparen(o).(*ast.CallExpr); ok && len(c.Args) == 1 && info.Types[c.Fun].IsType() {
			o = c.Args[0]
			if s, ok := ast.Unparen(o).(*ast.SliceExpr); ok {
				o = s.X
			}
		}
		if tv, ok := info.Types[o]; ok && holdsDigest(tv.Type, 0) {
			return []string{fmt.Sprintf("%s of %s", what, types.ExprString(o))}
		}
	}
	return nil
}

// holdsDigest reports whether t is, or holds in its fields, a byte array of
// 17 bytes or more.
func holdsDigest(t types.Type, depth int) bool {
	if depth > 8 {
		return false
	}
	switch u := t.Underlying().(type) {
	case *types.Array:
		if b, ok := u.Elem().Underlying().(*types.Basic); ok && b.Kind() == types.Byte && u.Len() >= 17 {
			return true
		}
		return holdsDigest(u.Elem(), depth+1)
	case *types.Struct:
		for i := range u.NumFields() {
			if holdsDigest(u.Field(i).Type(), depth+1) {
				return true
			}
		}
	}
	return false
}

// zeroLiteral reports whether e is a composite literal with no elements,
// in parentheses or not: the zero value of its type.
func zeroLiteral(e ast.Expr) bool {
	c, ok := ast.Unparen(e).(*ast.CompositeLit)
	return ok && len(c.Elts) == 0
}

// listedPackage is what go list -json tells of a package.
type listedPackage struct {
	ImportPath, Dir, Export string
	GoFiles                 []string
	Module                  *struct{ Main bool }
}

// listPackages lists the module's packages and all they import, with the
// export data the type checker reads them from (built as needed).
func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	args := []string{"list", "-export", "-deps", "-json=ImportPath,Dir,Export,GoFiles,Module"}
	if raceEnabled {
		// The export data of the race build go test has just made: no
		// second build of the module and its dependencies.
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./...")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}
