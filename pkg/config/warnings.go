package config

import (
	"fmt"
	"time"
)

// CallTimeout is implemented by a sink or destination config whose calls have a time limit (the
// http sink's timeout). Warnings compares it with shutdown_timeout.
type CallTimeout interface {
	CallTimeout() time.Duration
}

// Warnings lists what is valid but contradicts itself, in the format of Error: a sink or on_failure
// destination whose call timeout is not below shutdown_timeout, so that one slow call in flight at
// SIGTERM outlives the drain and is cut short (delivered again after restart). `poller validate`
// prints them and still exits 0.
func Warnings(c *Config) []*Error {
	var out []*Error
	check := func(p *Plugin, path string) {
		if p == nil {
			return
		}
		ct, ok := p.Config.(CallTimeout)
		if !ok || ct.CallTimeout() < c.ShutdownTimeout {
			return
		}
		line := 0
		if p.Node != nil {
			line = keyLine(p.Node, "timeout")
			if line == 0 {
				line = p.Node.Line
			}
		}
		out = append(out, &Error{File: c.File, Line: line, Path: path + ".timeout", Msg: fmt.Sprintf(
			"warning: %s is not below shutdown_timeout (%s): a call in flight at SIGTERM may outlive the drain, "+
				"which then stops it and exits 1 (its records are delivered again after restart); keep every timeout below shutdown_timeout",
			ct.CallTimeout(), c.ShutdownTimeout)})
	}
	for i := range c.Pipelines {
		check(&c.Pipelines[i].Sink, fmt.Sprintf("pipelines[%d].sink", i))
		check(c.Pipelines[i].OnFailure, fmt.Sprintf("pipelines[%d].on_failure", i))
	}
	return out
}
