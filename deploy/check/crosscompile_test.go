package check

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// stampFlag is how the image stamps the version: cmd/poller's main.version.
const stampFlag = "-X main.version="

// TestCrossCompile builds the image's binary as deploy/Dockerfile does, for linux/amd64 and
// linux/arm64, checks each is a static binary for its machine, and runs the one this machine can
// run to see the stamped version.
func TestCrossCompile(t *testing.T) {
	df, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"GOARCH=${TARGETARCH}", "CGO_ENABLED=0", stampFlag + "${VERSION}", "./cmd/poller", "USER 65532"} {
		if !strings.Contains(string(df), want) {
			t.Fatalf("%s does not contain %q: the check below no longer builds what the image builds", dockerfile, want)
		}
	}
	const version = "v0.0.0-deploy-check"
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	dir := t.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			out := filepath.Join(dir, "poller-linux-"+arch)
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w "+stampFlag+version, "-o", out, "./cmd/poller")
			cmd.Dir = "../.."
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GOARCH=%s go build: %v\n%s", arch, err, b)
			}
			f, err := elf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != machines[arch] {
				t.Errorf("%s is for %v, want %v", out, f.Machine, machines[arch])
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s is dynamically linked: the distroless static image has no loader", out)
				}
			}
			if runtime.GOOS != "linux" || runtime.GOARCH != arch {
				return
			}
			got, err := exec.Command(out, "version").Output()
			if err != nil || strings.TrimSpace(string(got)) != "poller "+version {
				t.Errorf("%s version = %q (%v), want %q", out, got, err, "poller "+version)
			}
		})
	}
}
