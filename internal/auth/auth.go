// Package auth is the controller's API authentication and authorization:
// bearer tokens with a role (admin, operator, reader), stored as SHA-256
// hashes of their secret, created, listed and revoked with an event each.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
)

// Token kinds: KindAPI tokens are used by people and scripts on the REST
// API; KindEnroll tokens let an agent join its node.
const (
	KindAPI    = "api"
	KindEnroll = "enroll"
)

// tokenPrefix starts every Hummingbird API token, so that secret scanners
// and people recognize one.
const tokenPrefix = "hb_"

var rank = map[string]int{apitype.RoleReader: 1, apitype.RoleOperator: 2, apitype.RoleAdmin: 3}

// Roles lists the roles, most powerful first.
var Roles = apitype.Roles

// Principal is who made a request.
type Principal struct {
	TokenID string
	Role    string
}

// Allows says whether p's role is at least role.
func (p Principal) Allows(role string) bool { return rank[p.Role] >= rank[role] && rank[role] > 0 }

// Actor is how p appears in the event log.
func (p Principal) Actor() string { return "token:" + p.TokenID }

// Tokens creates, checks and revokes API tokens.
type Tokens struct {
	st      store.Store
	now     func() time.Time
	rand    io.Reader
	newUUID func() string

	mu    sync.Mutex
	known map[string]knownToken // by id: API tokens read for knownFor
	gen   uint64                // counts deletions
}

// knownToken is a token as Authenticate read it from the store at read.
type knownToken struct {
	tok  store.Token
	read time.Time
}

// knownFor is how long Authenticate trusts a token it read without
// reading it again: most requests then cost no transaction for their
// token. A token deleted through this controller is refused at once; one
// deleted through another controller sharing the database, knownFor later
// at most. Expiry is checked on every request.
const knownFor = time.Second

// maxKnown bounds the tokens Authenticate keeps: when that many are
// known, it forgets them all.
const maxKnown = 1024

// Options configures Tokens; zero values mean the wall clock, crypto/rand and
// random uuids.
type Options struct {
	Clock   func() time.Time
	Rand    io.Reader
	NewUUID func() string
}

// New returns Tokens over st.
func New(st store.Store, o Options) *Tokens {
	t := &Tokens{st: st, now: o.Clock, rand: o.Rand, newUUID: o.NewUUID}
	if t.now == nil {
		t.now = time.Now
	}
	if t.rand == nil {
		t.rand = rand.Reader
	}
	if t.newUUID == nil {
		t.newUUID = uuid.NewString
	}
	return t
}

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func (t *Tokens) random(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(t.rand, b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return b32.EncodeToString(b), nil
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// split parses "hb_<id>.<secret>".
func split(bearer string) (id, secret string, ok bool) {
	rest, found := strings.CutPrefix(bearer, tokenPrefix)
	if !found {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, ".")
	return id, secret, ok && id != "" && secret != ""
}

// Created is a token just made: the only time its secret is known.
type Created struct {
	Token  store.Token
	Secret string // the whole bearer token, "hb_<id>.<secret>"
}

// Create makes an API token with role; ttl 0 means it does not expire.
func (t *Tokens) Create(ctx context.Context, actor, role, description string, ttl time.Duration) (Created, error) {
	return t.create(ctx, actor, Spec{Kind: KindAPI, Role: role, Description: description, TTL: ttl})
}

// Spec describes a token to make.
type Spec struct {
	Kind        string // KindAPI or KindEnroll
	Role        string // KindAPI: admin, operator or reader
	Description string
	TTL         time.Duration // 0: no expiry (enroll tokens: DefaultEnrollTTL)
	MaxUses     int64         // KindEnroll: joins allowed, 0 for no limit
	Host        string        // KindEnroll: the only hostname it admits
}

// DefaultEnrollTTL is the lifetime of an enrollment token made without one.
const DefaultEnrollTTL = 24 * time.Hour

// CreateSpec makes a token of either kind.
func (t *Tokens) CreateSpec(ctx context.Context, actor string, s Spec) (Created, error) {
	return t.create(ctx, actor, s)
}

func (t *Tokens) create(ctx context.Context, actor string, s Spec) (Created, error) {
	role, description, ttl := s.Role, s.Description, s.TTL
	switch s.Kind {
	case KindAPI:
		if rank[role] == 0 {
			return Created{}, problem.Invalidf("role", "role %q is not one of: %s", role, strings.Join(Roles, ", "))
		}
		if s.MaxUses != 0 || s.Host != "" {
			return Created{}, problem.Invalidf("uses", "uses and host are for enroll tokens; API tokens have a role")
		}
	case KindEnroll:
		if role != "" {
			return Created{}, problem.Invalidf("role", "enroll tokens have no role: they only let an agent join")
		}
		if s.MaxUses < 0 {
			return Created{}, problem.Invalidf("uses", "uses %d: give a positive number of joins, or 0 for no limit", s.MaxUses)
		}
		if s.Host != "" {
			if err := inventory.CheckHostname(s.Host); err != nil {
				return Created{}, problem.Invalidf("host", "host %q is not a hostname", s.Host)
			}
		}
		if ttl == 0 {
			ttl = DefaultEnrollTTL
		}
	default:
		return Created{}, problem.Invalidf("type", "token type %q: use api or enroll", s.Kind)
	}
	if ttl < 0 {
		return Created{}, problem.Invalidf("ttl", "ttl %s is negative; give a positive duration like 24h, or none", ttl)
	}
	if err := inventory.CheckText("description", description, 255); err != nil {
		return Created{}, err
	}
	id, err := t.random(5) // 8 characters
	if err != nil {
		return Created{}, err
	}
	secret, err := t.random(20) // 32 characters, 160 bits
	if err != nil {
		return Created{}, err
	}
	now := t.now().UTC().Truncate(time.Microsecond)
	tok := store.Token{
		ID: id, Kind: s.Kind, Role: role, SecretSHA256: hashSecret(secret),
		Description: description, CreatedBy: actor, CreatedAt: now,
		MaxUses: s.MaxUses, HostName: s.Host,
	}
	if ttl > 0 {
		exp := now.Add(ttl).Truncate(time.Microsecond)
		tok.ExpiresAt = &exp
	}
	err = t.st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertToken(&tok); err != nil {
			return err
		}
		return tx.AppendEvent(&store.Event{
			UUID: t.newUUID(), Time: now, EntityType: "token", EntityID: "token=" + id,
			Action: "token.create", Actor: actor, Reason: createdReason(tok),
		})
	})
	if err != nil {
		return Created{}, err
	}
	return Created{Token: tok, Secret: tokenPrefix + id + "." + secret}, nil
}

func createdReason(tok store.Token) string {
	if tok.Kind == KindEnroll {
		r := fmt.Sprintf("enroll token %s created", tok.ID)
		if tok.HostName != "" {
			r += " for host " + tok.HostName
		}
		return r
	}
	return fmt.Sprintf("token %s created with role %s", tok.ID, tok.Role)
}

// Bootstrap makes the first admin token when there are no API tokens at
// all. It returns the secret, or "" when tokens already exist.
func (t *Tokens) Bootstrap(ctx context.Context) (string, error) {
	var n int
	if err := t.st.Read(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.CountTokens(KindAPI)
		return err
	}); err != nil {
		return "", err
	}
	if n > 0 {
		return "", nil
	}
	c, err := t.Create(ctx, "controller", apitype.RoleAdmin, "first admin token, made at first start", 0)
	if err != nil {
		return "", err
	}
	return c.Secret, nil
}

// List returns the API and enrollment tokens, without secrets.
func (t *Tokens) List(ctx context.Context) ([]store.Token, error) {
	var out []store.Token
	err := t.st.Read(ctx, func(tx store.Tx) error {
		for _, k := range []string{KindAPI, KindEnroll} {
			toks, err := tx.ListTokens(k)
			if err != nil {
				return err
			}
			out = append(out, toks...)
		}
		return nil
	})
	return out, err
}

// Delete revokes a token at once. The last admin token cannot be deleted,
// which would leave nobody able to manage tokens.
func (t *Tokens) Delete(ctx context.Context, actor, id string) error {
	// Forgotten once the deletion is over (or failed): a request that
	// read the token before does not keep it (remember).
	defer t.forget(id)
	return t.st.Write(ctx, func(tx store.Tx) error {
		tok, err := tx.TokenByID(id)
		if errors.Is(err, store.ErrNotFound) {
			return problem.NotFoundf("no token %q (hbctl token-list shows the ids)", id)
		}
		if err != nil {
			return err
		}
		if tok.Kind == KindAPI && tok.Role == apitype.RoleAdmin {
			all, err := tx.ListTokens(KindAPI)
			if err != nil {
				return err
			}
			admins := 0
			for _, o := range all {
				if o.Role == apitype.RoleAdmin && !expired(o, t.now()) {
					admins++
				}
			}
			if admins <= 1 && !expired(tok, t.now()) {
				return problem.Conflictf("", "token %s is the last admin token; create another admin token before deleting it", id)
			}
		}
		if err := tx.DeleteToken(id); err != nil {
			return err
		}
		return tx.AppendEvent(&store.Event{
			UUID: t.newUUID(), Time: t.now().UTC().Truncate(time.Microsecond), EntityType: "token",
			EntityID: "token=" + id, Action: "token.delete", Actor: actor,
			Reason: fmt.Sprintf("token %s (role %s) deleted", id, tok.Role),
		})
	})
}

func expired(tok store.Token, now time.Time) bool {
	return tok.ExpiresAt != nil && !now.Before(*tok.ExpiresAt)
}

// UseEnroll checks an enrollment token inside tx and counts the use: it
// must exist, be of kind enroll, not be expired or spent, and admit
// hostname. The caller's transaction makes the use and the join one step.
func UseEnroll(tx store.Tx, bearer, hostname string, now time.Time) (store.Token, error) {
	const hint = "ask an admin for an enroll token (hbctl token-create --type enroll)"
	id, secret, ok := split(bearer)
	if !ok {
		return store.Token{}, problem.Unauthenticatedf("the enroll token is malformed: %s", hint)
	}
	tok, err := tx.TokenByID(id)
	if errors.Is(err, store.ErrNotFound) {
		return tok, problem.Unauthenticatedf("the enroll token is unknown or revoked: %s", hint)
	}
	if err != nil {
		return tok, err
	}
	want, _ := hex.DecodeString(tok.SecretSHA256)
	got := sha256.Sum256([]byte(secret))
	if tok.Kind != KindEnroll || subtle.ConstantTimeCompare(want, got[:]) != 1 {
		return tok, problem.Unauthenticatedf("the enroll token is unknown or revoked: %s", hint)
	}
	if expired(tok, now) {
		return tok, problem.Unauthenticatedf("the enroll token expired at %s: %s", tok.ExpiresAt.Format(time.RFC3339), hint)
	}
	if tok.HostName != "" && tok.HostName != hostname {
		return tok, problem.Forbiddenf("this enroll token admits host %s only, not %s", tok.HostName, hostname)
	}
	if err := tx.UseToken(id); errors.Is(err, store.ErrNotFound) {
		return tok, problem.Unauthenticatedf("the enroll token was used %d times, all it allows: %s", tok.MaxUses, hint)
	} else if err != nil {
		return tok, err
	}
	return tok, nil
}

// Authenticate checks a bearer token and returns who it belongs to.
func (t *Tokens) Authenticate(ctx context.Context, bearer string) (Principal, error) {
	const hint = "send a valid token: Authorization: Bearer hb_… (HB_TOKEN for hbctl)"
	if bearer == "" {
		return Principal{}, problem.Unauthenticatedf("no token: %s", hint)
	}
	id, secret, ok := split(bearer)
	if !ok {
		return Principal{}, problem.Unauthenticatedf("the token is malformed: %s", hint)
	}
	now := t.now()
	tok, gen, ok := t.knownAt(id, now)
	if !ok {
		err := t.st.Read(ctx, func(tx store.Tx) error {
			var err error
			tok, err = tx.TokenByID(id)
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, problem.Unauthenticatedf("the token is unknown or revoked: %s", hint)
		}
		if err != nil {
			return Principal{}, err
		}
		if tok.Kind == KindAPI {
			t.remember(tok, now, gen)
		}
	}
	want, _ := hex.DecodeString(tok.SecretSHA256)
	got := sha256.Sum256([]byte(secret))
	if tok.Kind != KindAPI || subtle.ConstantTimeCompare(want, got[:]) != 1 {
		return Principal{}, problem.Unauthenticatedf("the token is unknown or revoked: %s", hint)
	}
	if expired(tok, now) {
		return Principal{}, problem.Unauthenticatedf("the token expired at %s: %s", tok.ExpiresAt.Format(time.RFC3339), hint)
	}
	return Principal{TokenID: tok.ID, Role: tok.Role}, nil
}

// knownAt returns token id as read less than knownFor before now, and
// the count of deletions so far (for remember).
func (t *Tokens) knownAt(id string, now time.Time) (store.Token, uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.known[id]
	if !ok || now.Before(k.read) || now.Sub(k.read) >= knownFor {
		return store.Token{}, t.gen, false
	}
	return k.tok, t.gen, true
}

// remember keeps tok, read at now, unless a token was deleted since gen:
// a read from before a deletion's commit is not kept past it.
func (t *Tokens) remember(tok store.Token, now time.Time, gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen != t.gen {
		return
	}
	if t.known == nil || len(t.known) >= maxKnown {
		t.known = map[string]knownToken{}
	}
	t.known[tok.ID] = knownToken{tok: tok, read: now}
}

// forget drops token id from what Authenticate knows, and what reads
// under way would keep.
func (t *Tokens) forget(id string) {
	t.mu.Lock()
	t.gen++
	delete(t.known, id)
	t.mu.Unlock()
}
