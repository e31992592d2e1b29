package store

import (
	"context"
	"errors"
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

// A local-only transaction cannot write a replicated bucket: that change
// would stay on one node.
func TestLocalWriteRefusesReplicatedBucket(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "loa.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.updateLocal(context.Background(), func(tx *wtx) error {
		return tx.put(bucketAreas, []byte("a"), []byte("{}"))
	})
	if !errors.Is(err, errNotLocal) {
		t.Fatalf("err %v, want errNotLocal", err)
	}
	if err := db.updateLocal(context.Background(), func(tx *wtx) error {
		return tx.put(bucketDeviceStates, []byte("a"), []byte("{}"))
	}); err != nil {
		t.Fatal(err)
	}
}
