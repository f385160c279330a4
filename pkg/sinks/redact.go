package sinks

import (
	"errors"
	"net/url"
)

// RedactURL returns rawURL fit for logs, errors and on_failure records: the user information and
// the query string are replaced by "REDACTED" (either may hold a token: https://user:pass@host,
// ?token=...), and a fragment is dropped. A URL that does not parse is replaced as a whole, since
// its text cannot be trusted to be free of secrets.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "REDACTED (an unparsable URL)"
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	if u.User != nil {
		r.User = url.User("REDACTED")
	}
	if u.RawQuery != "" || u.ForceQuery {
		r.RawQuery = "REDACTED"
	}
	return r.String()
}

// redactURLError replaces the URL inside a *url.Error (which the net/http client returns, and
// which prints `Post "<the whole URL>": ...`) by redacted, keeping the error's chain for errors.Is
// and errors.As. Other errors are returned as they are.
func redactURLError(err error, redacted string) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return &url.Error{Op: ue.Op, URL: redacted, Err: ue.Err}
}
