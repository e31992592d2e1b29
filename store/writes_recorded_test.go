package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// Every write of the store's code goes through a *wtx, so that a
// replicated store records it in the write set: a write through a
// *bolt.Bucket would change the leader's transaction (rolled back) and
// never reach the log. Only migrations (every node runs them) and the
// code that applies write sets and snapshots write bbolt directly.
func TestWritesGoThroughTheWriteSet(t *testing.T) {
	allowed := map[string]bool{
		// wtx itself and the appliers.
		"put": true, "del": true, "nextSeq": true, "CreateBucketIfNotExists": true,
		"DeleteBucket": true, "applyOps": true, "ApplyWriteSet": true, "SetAppliedIndex": true,
		"restoreBuckets": true,
		// Migrations: local on every node.
		"migrate": true, "indexAreaChildren": true, "originsFromCreators": true,
	}
	writes := map[string]bool{
		"Put": true, "Delete": true, "NextSequence": true, "SetSequence": true,
		"CreateBucket": true, "DeleteBucket": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil || allowed[fd.Name.Name] {
				continue
			}
			if name == "schema.go" && fd.Name.Name != "migrate" {
				continue
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if ok && writes[sel.Sel.Name] {
					// tx.CreateBucket(...) on a *wtx is recorded: allow calls
					// on a receiver named tx.
					if id, isID := sel.X.(*ast.Ident); isID && id.Name == "tx" && strings.Contains(sel.Sel.Name, "Bucket") {
						return true
					}
					t.Errorf("%s: %s writes bbolt directly (%s): use the *wtx's put/del/nextSeq",
						fset.Position(call.Pos()), fd.Name.Name, sel.Sel.Name)
				}
				return true
			})
		}
	}
}
