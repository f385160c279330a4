package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/service"
)

// configYAMLEnv names the environment variable that may hold the config itself rather than a path:
// a platform without files or a shell to write one (an ECS task taking it from an SSM parameter)
// hands it over this way. Errors then name "$POLLER_CONFIG_YAML" as the file.
const configYAMLEnv = "POLLER_CONFIG_YAML"

// loadConfig parses a command's flags (--config, else $POLLER_CONFIG, else the YAML in
// $POLLER_CONFIG_YAML) and loads the config with the plugin types registered now. Every problem is
// printed to stderr; ok is false then (exit ExitUsage).
func loadConfig(name string, args []string, stderr io.Writer) (cfg *config.Config, ok bool) {
	return loadConfigWith(name, args, stderr, nil)
}

// loadConfigWith is loadConfig for a command with flags of its own, which define adds.
func loadConfigWith(name string, args []string, stderr io.Writer, define func(fs *flag.FlagSet)) (cfg *config.Config, ok bool) {
	fs := flag.NewFlagSet("poller "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("POLLER_CONFIG"), "config file (default $POLLER_CONFIG; without either, the YAML in $"+configYAMLEnv+")")
	if define != nil {
		define(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "poller %s: unexpected argument %q\n", name, fs.Arg(0))
		return nil, false
	}
	inline := os.Getenv(configYAMLEnv)
	if *path == "" && inline == "" {
		fmt.Fprintf(stderr, "poller %s: no config: give --config FILE or set POLLER_CONFIG (or %s)\n", name, configYAMLEnv)
		return nil, false
	}
	// The registries are read now, not at init: the types a user's module registers in its own init
	// are checked like the built-in ones.
	var err error
	if *path != "" {
		cfg, err = config.Load(*path, service.Registries())
	} else {
		cfg, err = config.Parse([]byte(inline), "$"+configYAMLEnv, service.Registries())
	}
	if err != nil {
		errs := config.Errors(err)
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		if len(errs) == 0 {
			fmt.Fprintln(stderr, err)
		}
		return nil, false
	}
	return cfg, true
}

// validateCommand checks a config: every error (exit ExitUsage) or warning, as file:line: path: what.
func validateCommand(_ context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, ok := loadConfig("validate", args, stderr)
	if !ok {
		return ExitUsage
	}
	warnings := config.Warnings(cfg)
	for _, w := range warnings {
		fmt.Fprintln(stderr, w)
	}
	fmt.Fprintf(stdout, "%s: valid (%d pipeline(s), %d warning(s))\n", cfg.File, len(cfg.Pipelines), len(warnings))
	return ExitOK
}
