package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/poller-dev/poller/pkg/config"
)

// FuzzParse checks that no input makes Parse panic, and that it always returns either a config or
// only located *config.Error values. The seeds (every testdata file) run in a normal go test.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	require.NoError(f, err)
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(data)
	}
	reg := testRegistries()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, "fuzz.yaml", reg)
		if err == nil {
			if cfg == nil || len(cfg.Pipelines) == 0 {
				t.Fatalf("Parse() = %v, nil: a valid config has pipelines", cfg)
			}
			return
		}
		if cfg != nil {
			t.Fatalf("Parse() = %v, %v: want a nil config with an error", cfg, err)
		}
		errs := config.Errors(err)
		if len(errs) == 0 {
			t.Fatalf("Parse() error %v holds no *config.Error", err)
		}
		for _, e := range errs {
			if e.File != "fuzz.yaml" || e.Msg == "" {
				t.Fatalf("Parse() error %#v: want File fuzz.yaml and a message", e)
			}
		}
	})
}
