package service

import (
	"context"

	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/config"
)

// LeaseStore returns the lease table of cfg (its aws and leases sections), reached as the running
// replicas reach it: for the operator's commands (poller status, pause, resume, reset).
func LeaseStore(ctx context.Context, cfg *config.Config, log *zap.Logger) (*checkpoint.Store, error) {
	awsCfg, err := loadAWS(ctx, cfg.AWS, log)
	if err != nil {
		return nil, err
	}
	ddb, _ := newClients(awsCfg, cfg.AWS.EndpointURL)
	return checkpoint.New(ddb, cfg.Leases.Table), nil
}
