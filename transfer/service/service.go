//go:build linux

// Package service runs transferd as a systemd-native daemon: a Unix socket
// from socket activation (or --listen), sd_notify READY/STOPPING and
// WATCHDOG, crash recovery before serving, the retention sweeper, and a
// graceful shutdown that lets in-flight transfers finish.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/transfer/api"
	"github.com/bulwark-appliance/bulwark/transfer/audit"
	"github.com/bulwark-appliance/bulwark/transfer/retention"
	"github.com/bulwark-appliance/bulwark/transfer/scan"
	"github.com/bulwark-appliance/bulwark/transfer/store"
)

// SocketName is the FileDescriptorName systemd gives the listener
// (defaults to the socket unit's name).
const SocketName = "transferd.socket"

// Options are transferd's command-line settings over the policy.
type Options struct {
	Policy  *policies.Policy
	Listen  string // Unix socket path; empty: socket activation
	DataDir string
	DB      string
	Clamd   string
	// ShutdownGrace bounds how long in-flight requests may run after
	// SIGTERM (systemd's TimeoutStopSec should be longer).
	ShutdownGrace time.Duration
	Log           *slog.Logger
}

// Run serves until ctx is cancelled (SIGTERM), then shuts down gracefully.
func Run(ctx context.Context, o Options) error {
	st, err := store.Open(ctx, o.DB, o.DataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	removed, err := st.Recover(ctx)
	if err != nil {
		return err
	}
	if len(removed) > 0 {
		o.Log.Warn("removed leftovers of interrupted uploads", "paths", removed)
	}
	al := audit.New(st.DB, o.Log)
	scanner := &scan.Client{Socket: o.Clamd, Timeout: o.Policy.ClamAV.ScanTimeout.Duration}
	srv, err := api.New(api.Config{Policy: o.Policy, Store: st, Scanner: scanner, Audit: al, Log: o.Log})
	if err != nil {
		return err
	}
	l, err := listener(o.Listen)
	if err != nil {
		return err
	}
	hs := srv.HTTPServer()
	hs.ErrorLog = slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn)
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(api.Listener(l)) }() // sendfile for downloads
	sweeper := &retention.Sweeper{Store: st, Audit: al, Log: o.Log, Now: time.Now,
		Retention: time.Duration(o.Policy.Retention.Days) * 24 * time.Hour, Inactive: o.Policy.Passwords.InactiveAfter.Duration,
		AuditRetention: time.Duration(o.Policy.Retention.AuditDays) * 24 * time.Hour}
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	go sweeper.Run(bg, time.Hour)
	go every(bg, api.AuditFlushInterval, func(context.Context) { srv.FlushAudit() }) // failures are logged by FlushAudit
	go watchdog(bg, st, o.Log)
	notify(o.Log, daemon.SdNotifyReady)
	o.Log.Info("transferd ready", "listen", l.Addr().String(), "data_dir", o.DataDir)
	select {
	case err := <-serveErr:
		return fmt.Errorf("transferd: serve: %w", err)
	case <-ctx.Done():
	}
	notify(o.Log, daemon.SdNotifyStopping)
	o.Log.Info("shutting down: finishing in-flight requests", "grace", o.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("transferd: graceful shutdown: %w", err)
	}
	return nil
}

// listener takes the socket-activated Unix socket, or binds path.
func listener(path string) (net.Listener, error) {
	named, err := activation.ListenersWithNames()
	if err != nil {
		return nil, fmt.Errorf("transferd: socket activation: %w", err)
	}
	if len(named) > 0 {
		ls := named[SocketName]
		if len(ls) != 1 {
			return nil, fmt.Errorf("transferd: socket activation passed %d listeners named %q, want 1 (one ListenStream= in %s, FileDescriptorName unset or %s)",
				len(ls), SocketName, SocketName, SocketName)
		}
		return ls[0], nil
	}
	if path == "" {
		return nil, errors.New("transferd: no listener: pass --listen /run/transferd/transferd.sock or start via transferd.socket")
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("transferd: remove stale socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("transferd: listen on %s: %w", path, err)
	}
	// nginx (group www-data on the appliance) connects; nobody else.
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("transferd: chmod %s: %w", path, err)
	}
	return l, nil
}

// notify sends one sd_notify state; "not sent" (no NOTIFY_SOCKET) is normal
// outside systemd and logged differently from a failure.
func notify(log *slog.Logger, state string) {
	sent, err := daemon.SdNotify(false, state)
	switch {
	case err != nil:
		log.Error("sd_notify failed", "state", state, "err", err)
	case !sent:
		log.Debug("sd_notify not sent (no NOTIFY_SOCKET)", "state", state)
	}
}

// watchdog pings systemd at half the WatchdogSec interval, but only while
// the database answers: a wedged service gets restarted.
func watchdog(ctx context.Context, st *store.Store, log *slog.Logger) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	every(ctx, interval/2, func(ctx context.Context) {
		pctx, cancel := context.WithTimeout(ctx, interval/4)
		defer cancel()
		if _, _, err := st.Counts(pctx); err != nil {
			log.Error("watchdog: database unhealthy, not pinging", "err", err)
			return
		}
		notify(log, daemon.SdNotifyWatchdog)
	})
}

// every calls f each interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}
