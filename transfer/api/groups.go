//go:build linux

package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/transfer/audit"
	"github.com/bulwark-appliance/bulwark/transfer/store"
)

// rules is what a user may do: the system policy narrowed or (for
// retention) overridden by the user's groups. With several groups a user
// gets the most permissive send rights of any of them (membership grants
// rights), but never beyond the system limits; TOTP is required if any
// group requires it; the longest group retention applies.
type rules struct {
	domains     []string // nil: any recipient domain
	maxUpload   int64    // bytes
	maxExpiry   time.Duration
	retention   int // days; 0: system retention
	requireTOTP bool
}

func (s *Server) rules(ctx context.Context, u *store.User) (rules, error) {
	t := s.cfg.Policy.Transfer
	sys := rules{maxUpload: t.MaxUploadMiB << 20, maxExpiry: t.MaxExpiry.Duration}
	if len(u.Groups) == 0 {
		return sys, nil
	}
	gs, err := s.cfg.Store.Groups(ctx, u.Groups...)
	if err != nil {
		return rules{}, err
	}
	if len(gs) == 0 { // memberships of deleted groups grant nothing extra
		return sys, nil
	}
	r := rules{domains: []string{}}
	for _, g := range gs {
		r.merge(g, sys)
	}
	return r, nil
}

func (r *rules) merge(g *store.Group, sys rules) {
	if len(g.RecipientDomains) == 0 || r.domains == nil {
		r.domains = nil
	} else {
		r.domains = append(r.domains, g.RecipientDomains...)
	}
	r.maxUpload = max(r.maxUpload, limit(g.MaxUploadMiB<<20, sys.maxUpload))
	r.maxExpiry = max(r.maxExpiry, limit(g.MaxExpiry, sys.maxExpiry))
	r.retention = max(r.retention, g.RetentionDays)
	r.requireTOTP = r.requireTOTP || g.RequireTOTP
}

// limit is the group's value capped by the system's; zero means the system's.
func limit[T int64 | time.Duration](group, system T) T {
	if group == 0 || group > system {
		return system
	}
	return group
}

// recipientAllowed reports whether rc's domain is one the rules allow.
func (r rules) recipientAllowed(rc string) bool {
	if r.domains == nil {
		return true
	}
	_, domain, _ := strings.Cut(rc, "@")
	return slices.ContainsFunc(r.domains, func(d string) bool { return strings.EqualFold(d, domain) })
}

// checkMessage applies the group rules to a validated draft; a refusal is
// a 403 that the caller audits.
func (r rules) checkMessage(req *messageRequest, exp time.Duration) error {
	for _, rc := range req.Recipients {
		if !r.recipientAllowed(rc) {
			return fmt.Errorf("your groups may not send to %q (allowed domains: %s)", rc, strings.Join(r.domains, ", "))
		}
	}
	if exp > r.maxExpiry {
		return fmt.Errorf("expiry %s is over your groups' limit of %s", exp, r.maxExpiry)
	}
	return nil
}

// groupName matches the groups table's CHECK constraint.
var groupName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// groupRequest is the admin API's group document.
type groupRequest struct {
	RecipientDomains []string `json:"recipient_domains"`
	MaxUploadMiB     int64    `json:"max_upload_mib"`
	MaxExpiry        string   `json:"max_expiry"` // "7d"; empty: system
	RetentionDays    int      `json:"retention_days"`
	RequireTOTP      bool     `json:"require_totp"`
}

func (req groupRequest) group(name string) (*store.Group, error) {
	g := &store.Group{Name: name, RecipientDomains: req.RecipientDomains, MaxUploadMiB: req.MaxUploadMiB,
		RetentionDays: req.RetentionDays, RequireTOTP: req.RequireTOTP}
	if !groupName.MatchString(name) {
		return nil, fmt.Errorf("group name %q: want lower-case letters, digits, '.', '_' or '-', up to 63", name)
	}
	if req.MaxUploadMiB < 0 || req.RetentionDays < 0 || req.RetentionDays > 36500 {
		return nil, errors.New("max_upload_mib and retention_days must be 0 (system default) or positive")
	}
	for _, d := range req.RecipientDomains {
		if d == "" || strings.ContainsAny(d, "@ \t\r\n/") || len(d) > 253 {
			return nil, fmt.Errorf("recipient domain %q is not a domain name", d)
		}
	}
	if req.MaxExpiry != "" {
		d, err := policies.ParseDuration(req.MaxExpiry)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("max_expiry %q: want a positive duration such as 7d", req.MaxExpiry)
		}
		g.MaxExpiry = d.Truncate(time.Second)
	}
	return g, nil
}

func (s *Server) putGroup(w http.ResponseWriter, r *http.Request, u *store.User) {
	var req groupRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	g, err := req.group(r.PathValue("name"))
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := s.cfg.Store.PutGroup(r.Context(), g); err != nil {
		s.cfg.Log.Error("put group", "err", err)
		fail(w, http.StatusInternalServerError, "could not store the group")
		return
	}
	s.adminDone(w, r, audit.Event{Event: "admin.put_group", Actor: u.Username, OK: true,
		Fields: map[string]any{"group": g.Name, "rules": req}}, g)
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request, _ *store.User) {
	gs, err := s.cfg.Store.Groups(r.Context())
	if err != nil {
		fail(w, http.StatusInternalServerError, "could not list groups")
		return
	}
	out := make([]map[string]any, 0, len(gs))
	for _, g := range gs {
		out = append(out, map[string]any{"name": g.Name, "recipient_domains": g.RecipientDomains,
			"max_upload_mib": g.MaxUploadMiB, "max_expiry": g.MaxExpiry.String(), "retention_days": g.RetentionDays,
			"require_totp": g.RequireTOTP})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request, u *store.User) {
	name := r.PathValue("name")
	err := s.cfg.Store.DeleteGroup(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		fail(w, http.StatusNotFound, "no group %q", name)
		return
	}
	if err != nil {
		s.cfg.Log.Error("delete group", "err", err)
		fail(w, http.StatusInternalServerError, "could not delete the group")
		return
	}
	s.adminDone(w, r, audit.Event{Event: "admin.delete_group", Actor: u.Username, OK: true,
		Fields: map[string]any{"group": name}}, map[string]string{"deleted": name})
}

func (s *Server) setUserGroups(w http.ResponseWriter, r *http.Request, u *store.User) {
	var req struct {
		Groups []string `json:"groups"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	name := r.PathValue("name")
	err := s.cfg.Store.SetUserGroups(r.Context(), name, req.Groups)
	switch {
	case errors.Is(err, store.ErrNotFound):
		fail(w, http.StatusNotFound, "no user %q", name)
		return
	case errors.Is(err, store.ErrUnknownGroup):
		fail(w, http.StatusBadRequest, "groups %v: at least one does not exist", req.Groups)
		return
	case err != nil:
		s.cfg.Log.Error("set user groups", "err", err)
		fail(w, http.StatusInternalServerError, "could not set groups")
		return
	}
	s.adminDone(w, r, audit.Event{Event: "admin.set_groups", Actor: u.Username, OK: true,
		Fields: map[string]any{"user": name, "groups": req.Groups}}, map[string]any{"user": name, "groups": req.Groups})
}

// adminDone audits a completed admin change and answers with v.
func (s *Server) adminDone(w http.ResponseWriter, r *http.Request, ev audit.Event, v any) {
	if s.audit(r, ev) != nil {
		fail(w, http.StatusInternalServerError, "audit unavailable")
		return
	}
	writeJSON(w, http.StatusOK, v)
}
