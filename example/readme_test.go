package main

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readmeBlock is one fenced Go block of the README.
type readmeBlock struct {
	line  int      // of the opening fence, 1-based
	code  []string // the lines inside the fences
	after string   // the first non-blank line after the closing fence
}

// readmeGoBlocks returns the ```go blocks of the markdown file at path.
func readmeGoBlocks(t *testing.T, path string) []readmeBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var blocks []readmeBlock
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```go" {
			continue
		}
		b := readmeBlock{line: i + 1}
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			b.code = append(b.code, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: Go block never closed", path, b.line)
		}
		for j := i + 1; j < len(lines); j++ {
			if strings.TrimSpace(lines[j]) != "" {
				b.after = lines[j]
				break
			}
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// normalize drops each line's indentation and trailing blanks, and blank
// lines at either end, so a block matches the code at any nesting depth.
func normalize(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, strings.TrimSpace(l))
	}
	for len(out) > 0 && out[0] == "" {
		out = out[1:]
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// containsRun reports whether want appears as consecutive lines of have.
func containsRun(have, want []string) bool {
	if len(want) == 0 {
		return false
	}
	for i := 0; i+len(want) <= len(have); i++ {
		match := true
		for j := range want {
			if have[i+j] != want[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// testFiles returns the normalized lines of every _test.go file in the
// module, by path relative to the module root.
func testFiles(t *testing.T, root string) map[string][]string {
	t.Helper()
	files := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		var lines []string
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		if err := sc.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = normalize(lines)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestREADMECodeIsTested checks that every Go block of the README and of
// the documents in docs/ appears verbatim (but for indentation) in a
// _test.go file, where it compiles and runs as part of an Example, and that
// the line after the block names that file, so readers know where to find
// the whole program.
func TestREADMECodeIsTested(t *testing.T) {
	root := ".."
	if len(readmeGoBlocks(t, filepath.Join(root, "README.md"))) == 0 {
		t.Fatal("got no Go blocks in README.md, want the quick start at least")
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := testFiles(t, root)
	for _, doc := range append([]string{filepath.Join(root, "README.md")}, docs...) {
		name, err := filepath.Rel(root, doc)
		if err != nil {
			t.Fatal(err)
		}
		name = filepath.ToSlash(name)
		for _, b := range readmeGoBlocks(t, doc) {
			var in []string
			want := normalize(b.code)
			for path, lines := range files {
				if containsRun(lines, want) {
					in = append(in, path)
				}
			}
			if len(in) == 0 {
				t.Errorf("%s:%d: Go block (starting %q) is in no _test.go file; put it in an Example", name, b.line, first(want))
				continue
			}
			named := false
			for _, path := range in {
				if strings.Contains(b.after, path) {
					named = true
				}
			}
			if !named {
				t.Errorf("%s:%d: got %q after the Go block, want it to name the file that holds the code (one of %v)", name, b.line, b.after, in)
			}
		}
	}
}

func first(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[0]
}

func TestContainsRun(t *testing.T) {
	have := normalize([]string{"func f() {", "\tx := 1", "", "\treturn", "}"})
	tests := []struct {
		name string
		want []string
		ok   bool
	}{
		{"indented differently", []string{"    x := 1", "", "  return"}, true},
		{"whole", []string{"func f() {", "x := 1", "", "return", "}"}, true},
		{"blank line missing", []string{"x := 1", "return"}, false},
		{"changed", []string{"x := 2"}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := containsRun(have, normalize(tt.want)); got != tt.ok {
				t.Errorf("got %v, want %v", got, tt.ok)
			}
		})
	}
}
