//go:build linux

package api

import (
	"net/http"
)

// HealthService is the "service" field of every /healthz answer: a probe
// through nginx checks it to know transferd answered, not nginx itself or
// something else listening on 443.
const HealthService = "transferd"

// Health is the unauthenticated health document for load balancers and
// deploy tooling. It names component states only ("ok" or "unavailable"),
// never error text, counts or paths: anyone who can reach 443 may read it.
type Health struct {
	Service  string `json:"service"`
	Status   string `json:"status"` // ok, degraded (serving, but uploads refused), unavailable
	Database string `json:"database"`
	Clamd    string `json:"clamd"`
	Disk     string `json:"disk"` // ok, or alert (over the policy's threshold or unreadable)
}

// healthz answers 200 while transferd can serve (its database answers) and
// 503 when it cannot. A missing clamd or a full data volume is "degraded",
// not down: downloads still work and uploads are refused (fail closed), so
// the instance must stay in rotation for what it can still do.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	st, healthy := s.collectStatus(r.Context())
	h := Health{Service: HealthService, Status: "ok", Database: state(st.Database == "ok"), Clamd: state(st.Clamd == "ok"), Disk: "ok"}
	if st.Disk.Alert {
		h.Disk = "alert"
	}
	code := http.StatusOK
	switch {
	case st.Database != "ok":
		h.Status, code = "unavailable", http.StatusServiceUnavailable
	case !healthy:
		h.Status = "degraded"
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, code, h)
}

func state(ok bool) string {
	if ok {
		return "ok"
	}
	return "unavailable"
}
