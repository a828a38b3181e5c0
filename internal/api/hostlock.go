package api

import (
	"net/http"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/hostlock"
	"hummingbird.io/hummingbird/internal/problem"
)

func lockOut(op hostlock.Operation) apitype.LockOperation {
	out := apitype.LockOperation{Host: op.Hostname, State: op.State, Force: op.Force, Timeout: op.Timeout.String(),
		PodsTotal: op.PodsTotal, PodsEvicted: op.PodsEvicted, Pending: op.Pending, Message: op.Message,
		StartedAt: op.StartedAt, Runner: op.Runner, CancelBy: op.CancelledBy}
	if out.Pending == nil {
		out.Pending = []string{}
	}
	if !op.FinishedAt.IsZero() {
		t := op.FinishedAt
		out.FinishedAt = &t
	}
	return out
}

func (s *Server) locker() (*hostlock.Locker, error) {
	if s.d.Locks == nil {
		return nil, problem.NotSupportedf("this controller does not lock hosts")
	}
	return s.d.Locks, nil
}

func (s *Server) lockHost(r *http.Request, p auth.Principal) (any, error) {
	l, err := s.locker()
	if err != nil {
		return nil, err
	}
	var req apitype.LockRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return nil, err
		}
	}
	timeout, err := hostlock.ParseTimeout(req.Timeout)
	if err != nil {
		return nil, err
	}
	op, err := l.Lock(r.Context(), hostlock.Request{Host: r.PathValue("host"), Force: req.Force, Timeout: timeout, Actor: p.Actor()})
	if err != nil {
		return nil, err
	}
	return lockOut(op), nil
}

func (s *Server) getLock(r *http.Request, _ auth.Principal) (any, error) {
	l, err := s.locker()
	if err != nil {
		return nil, err
	}
	op, err := l.Operation(r.Context(), r.PathValue("host"))
	if err != nil {
		return nil, err
	}
	return lockOut(op), nil
}

func (s *Server) unlockHost(r *http.Request, p auth.Principal) (any, error) {
	l, err := s.locker()
	if err != nil {
		return nil, err
	}
	h, err := l.Unlock(r.Context(), r.PathValue("host"), p.Actor())
	if err != nil {
		return nil, err
	}
	return hostOut(h), nil
}

func (s *Server) cancelLock(r *http.Request, p auth.Principal) (any, error) {
	l, err := s.locker()
	if err != nil {
		return nil, err
	}
	op, err := l.Cancel(r.Context(), r.PathValue("host"), p.Actor())
	if err != nil {
		return nil, err
	}
	return lockOut(op), nil
}
