package harness

import (
	"path/filepath"
	"testing"
)

func TestRepoRoot(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot(filepath.Join("..", ".."))
	if err != nil || !filepath.IsAbs(root) {
		t.Errorf("RepoRoot(../..) = %q, %v; want the product's directory", root, err)
	}
	if _, err := RepoRoot("."); err == nil {
		t.Error("RepoRoot(.) accepted a directory without the product's go.mod")
	}
}
