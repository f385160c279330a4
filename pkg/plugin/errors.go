package plugin

import "errors"

// ConfigError is a config error about one key of a plugin's config. The config loader finds the
// key's line in the file (it looks for an error with a ConfigKey method anywhere in the tree a
// Validate returns), so `poller validate` can say file:line: pipelines[0].sink.url: ....
type ConfigError struct {
	Key string // the key inside the plugin's mapping, e.g. "url" or "headers.X-Token"
	Msg string // what is wrong, e.g. `must be an absolute http or https URL, got "ftp://x"`
}

// Error returns "key: msg".
func (e *ConfigError) Error() string { return e.Key + ": " + e.Msg }

// ConfigKey returns the key the error is about.
func (e *ConfigError) ConfigKey() string { return e.Key }

// JoinConfigErrors returns nil, the one error, or all of them joined: a plugin config's Validate
// reports every wrong key at once.
func JoinConfigErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	default:
		return errors.Join(errs...)
	}
}
