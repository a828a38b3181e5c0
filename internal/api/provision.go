package api

import (
	"net/http"
	"strconv"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/provision"
	"hummingbird.io/hummingbird/internal/store"
)

func jobOut(j store.ProvisionJob) apitype.ProvisionJob {
	out := apitype.ProvisionJob{ID: j.ID, UUID: j.UUID, Hostname: j.Hostname, State: j.State, Reinstall: j.Reinstall,
		TasksTotal: j.TasksTotal, TasksDone: j.TasksDone, Changed: j.Changed,
		Task: j.Task, Message: j.Message, CreatedBy: j.CreatedBy, CreatedAt: j.CreatedAt, Runner: j.Runner, CancelBy: j.CancelBy}
	if !j.StartedAt.IsZero() {
		t := j.StartedAt
		out.StartedAt = &t
	}
	if !j.FinishedAt.IsZero() {
		t := j.FinishedAt
		out.FinishedAt = &t
	}
	return out
}

func (s *Server) provisioner() (*provision.Runner, error) {
	if s.d.Provision == nil {
		return nil, problem.NotSupportedf("this controller does not provision hosts")
	}
	return s.d.Provision, nil
}

func (s *Server) startProvision(r *http.Request, p auth.Principal) (any, error) {
	run, err := s.provisioner()
	if err != nil {
		return nil, err
	}
	var req apitype.ProvisionRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return nil, err
		}
	}
	j, err := run.Start(r.Context(), provision.Request{Host: r.PathValue("host"), Reinstall: req.Reinstall, Actor: p.Actor()})
	if err != nil {
		return nil, err
	}
	return jobOut(j), nil
}

func (s *Server) getProvision(r *http.Request, _ auth.Principal) (any, error) {
	run, err := s.provisioner()
	if err != nil {
		return nil, err
	}
	j, err := run.Job(r.Context(), r.PathValue("host"))
	if err != nil {
		return nil, err
	}
	return jobOut(j), nil
}

func (s *Server) cancelProvision(r *http.Request, p auth.Principal) (any, error) {
	run, err := s.provisioner()
	if err != nil {
		return nil, err
	}
	j, err := run.Cancel(r.Context(), r.PathValue("host"), p.Actor())
	if err != nil {
		return nil, err
	}
	return jobOut(j), nil
}

func (s *Server) provisionLog(r *http.Request, _ auth.Principal) (any, error) {
	run, err := s.provisioner()
	if err != nil {
		return nil, err
	}
	var after int64
	if v := r.URL.Query().Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return nil, problem.Invalidf("after", "after %q: give the next value of the previous answer, or 0", v)
		}
	}
	limit, err := queryLimit(r, 1000, 1000)
	if err != nil {
		return nil, err
	}
	j, chunks, err := run.Log(r.Context(), r.PathValue("host"), after, limit)
	if err != nil {
		return nil, err
	}
	out := apitype.ProvisionLog{JobID: j.ID, State: j.State, Chunks: []apitype.LogChunk{}, Next: after}
	for _, c := range chunks {
		out.Chunks = append(out.Chunks, apitype.LogChunk{Seq: c.Seq, Text: c.Text})
		out.Next = c.Seq
	}
	return out, nil
}
