package config

import (
	"slices"
	"strconv"
	"strings"
)

// expansion is a value that ${...} expansion produced: config errors never show it (a token put in
// the wrong key would be printed), but name the variables instead.
type expansion struct {
	template string            // the value as written, e.g. "Bearer ${TOKEN}"
	value    string            // the value after expansion
	vars     map[string]string // variable name -> its value, for each ${NAME} in template
}

// shown is what an error says instead of the value: `the value of ${TOKEN}` when the template is
// one variable, else the template quoted, e.g. `"Bearer ${TOKEN}" (expanded)`.
func (e expansion) shown() string {
	if len(e.vars) == 1 {
		for name := range e.vars {
			if e.template == "${"+name+"}" {
				return "the value of ${" + name + "}"
			}
		}
	}
	return strconv.Quote(e.template) + " (expanded)"
}

// redactedMinLen is the length from which an expanded value is taken out of every message, not only
// of those about its own key: a long value does not stand for a word of the message by chance, and
// a message may quote another key's value (lease_duration names renew_interval's).
const redactedMinLen = 8

// redact returns msg, about the key at path, without any value that expansion produced for that
// key or below it, nor any long expanded value: each is replaced by its variables' names (shown).
func (d *decoder) redact(path, msg string) string {
	if len(d.expandedAt) == 0 {
		return msg
	}
	var exps []expansion
	for p, e := range d.expandedAt {
		if p == path || path == "" || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") || len(e.value) >= redactedMinLen {
			exps = append(exps, e)
		}
	}
	// Longer values first, so that a value containing another is replaced whole.
	slices.SortFunc(exps, func(a, b expansion) int { return len(b.value) - len(a.value) })
	for _, e := range exps {
		msg = e.redact(msg)
	}
	return msg
}

// redact replaces, in msg, the value in the forms errors print it (quoted as %q and describe do,
// truncated as describe does, bare), then each variable's value, bare or escaped as %q would.
func (e expansion) redact(msg string) string {
	if e.value == "" {
		return msg
	}
	shown := e.shown()
	msg = strings.ReplaceAll(msg, strconv.Quote(e.value), shown)
	if r := []rune(e.value); len(r) > maxShownRunes {
		msg = strings.ReplaceAll(msg, strconv.Quote(string(r[:maxShownRunes])+"..."), shown)
	}
	type form struct{ text, by string }
	forms := []form{{e.value, shown}}
	for name, v := range e.vars {
		forms = append(forms, form{v, "${" + name + "}"})
	}
	slices.SortFunc(forms, func(a, b form) int { return len(b.text) - len(a.text) })
	for _, f := range forms {
		if f.text == "" {
			continue
		}
		msg = replaceWord(msg, f.text, f.by)
		if q := strconv.Quote(f.text); q[1:len(q)-1] != f.text {
			msg = replaceWord(msg, q[1:len(q)-1], f.by)
		}
	}
	return msg
}

// replaceWord replaces the occurrences of old in s that do not continue a word on either side: a
// value 0 is replaced in "got 0", not inside "10000".
func replaceWord(s, old, by string) string {
	var b strings.Builder
	from := 0 // s[:from] is copied to b already
	for at := 0; ; {
		i := strings.Index(s[at:], old)
		if i < 0 {
			b.WriteString(s[from:])
			return b.String()
		}
		i += at
		end := i + len(old)
		bounded := (i == 0 || !isWordByte(s[i-1]) || !isWordByte(old[0])) &&
			(end == len(s) || !isWordByte(s[end]) || !isWordByte(old[len(old)-1]))
		if !bounded {
			at = i + 1
			continue
		}
		b.WriteString(s[from:i])
		b.WriteString(by)
		from, at = end, end
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
