package config

import (
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// expandEnv replaces ${NAME} in every scalar value of the tree (not in keys) by the environment
// variable NAME, and $$ by $. It works on the node tree before decoding, so every value keeps its line.
// An unset variable is an error, never an empty string. A plain (unquoted, untagged) value is
// re-resolved after expansion, so `batch_size: ${BATCH}` is an integer when BATCH is one.
func (d *decoder) expandEnv(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			d.expandEnv(c, path)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.expandEnv(c, indexPath(path, i))
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			d.expandEnv(n.Content[i+1], joinKey(path, n.Content[i].Value))
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		vars := map[string]string{}
		v, err := expand(n.Value, func(name string) (string, bool) {
			val, ok := os.LookupEnv(name)
			if ok {
				vars[name] = val
			}
			return val, ok
		})
		if err != nil {
			d.errorf(n.Line, path, "%v", err)
			d.broken[n] = true
			return
		}
		if len(vars) > 0 {
			d.expanded[n] = expansion{template: n.Value, value: v, vars: vars}
		}
		n.Value = v
		const explicit = yaml.TaggedStyle | yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle
		if n.Style&explicit == 0 {
			// Only numbers and booleans are re-resolved: an empty or "null" value stays a string, so
			// `listen: ${LISTEN}` with LISTEN="" disables the server rather than keeping the default.
			switch tag := (&yaml.Node{Kind: yaml.ScalarNode, Value: v}).ShortTag(); tag {
			case "!!int", "!!float", "!!bool":
				n.Tag = tag
			default:
				n.Tag = "!!str"
			}
		}
	}
	// Aliases are expanded where their anchor stands.
}

// expand does the substitution in one string: ${NAME} (NAME of letters, digits and _, not starting
// with a digit) and $$. A $ before anything else stays as it is.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q (write $$ for a literal $)", s[i:])
			}
			name := s[i+2 : i+2+end]
			if !validEnvName(name) {
				return "", fmt.Errorf("invalid variable name %q in ${...} (letters, digits and _; write $$ for a literal $)", name)
			}
			val, ok := lookup(name)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(val)
			s = s[i+2+end+1:]
		default:
			b.WriteByte('$')
			s = s[i+1:]
		}
	}
}

func validEnvName(name string) bool {
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for _, c := range []byte(name) {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
