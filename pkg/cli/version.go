package cli

import "runtime/debug"

// module is poller's module path, to find its version in a binary that another module built.
const module = "github.com/poller-dev/poller"

// versionString is the version `poller version` prints: set, else from the build info, else "dev".
func versionString(set string) string {
	if set != "" {
		return set
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	return moduleVersion(bi)
}

// moduleVersion is poller's version in bi: the main module's when poller is the main module, else
// the version of the poller module the main module requires (with a replace, the replacement's:
// "(devel)" for a folder, as for poller built from its own source). Without any, "dev".
func moduleVersion(bi *debug.BuildInfo) string {
	v := ""
	if bi.Main.Path == module {
		v = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == module {
			v = d.Version
			if d.Replace != nil {
				v = d.Replace.Version
			}
		}
	}
	if v == "" {
		return "dev"
	}
	return v
}
