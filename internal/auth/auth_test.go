package auth_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// fixture is Tokens on a real database with a clock the test moves.
type fixture struct {
	st  store.Store
	tok *auth.Tokens
	now time.Time
}

func newFixture(t *testing.T, dsn string) *fixture {
	t.Helper()
	f := &fixture{st: storetest.Open(t, dsn), now: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	n := 0
	f.tok = auth.New(f.st, auth.Options{
		Clock:   func() time.Time { return f.now },
		NewUUID: func() string { n++; return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) },
	})
	return f
}

func (f *fixture) create(t *testing.T, s auth.Spec) auth.Created {
	t.Helper()
	c, err := f.tok.CreateSpec(context.Background(), "test", s)
	if err != nil {
		t.Fatalf("create %+v: %v", s, err)
	}
	return c
}

// useEnroll uses an enroll token for hostname in a transaction of its own,
// which commits only when the use is accepted, as a join does.
func (f *fixture) useEnroll(bearer, hostname string) (store.Token, error) {
	var tok store.Token
	err := f.st.Write(context.Background(), func(tx store.Tx) error {
		var err error
		tok, err = auth.UseEnroll(tx, bearer, hostname, f.now)
		return err
	})
	return tok, err
}

func TestTokens(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			t.Run("create", func(t *testing.T) { t.Parallel(); testCreate(t, newFixture(t, b.DSN(t))) })
			t.Run("authenticate", func(t *testing.T) { t.Parallel(); testAuthenticate(t, newFixture(t, b.DSN(t))) })
			t.Run("enroll", func(t *testing.T) { t.Parallel(); testEnroll(t, newFixture(t, b.DSN(t))) })
			t.Run("delete", func(t *testing.T) { t.Parallel(); testDelete(t, newFixture(t, b.DSN(t))) })
			t.Run("known", func(t *testing.T) { t.Parallel(); testKnown(t, newFixture(t, b.DSN(t))) })
			t.Run("bootstrap", func(t *testing.T) { t.Parallel(); testBootstrap(t, newFixture(t, b.DSN(t))) })
		})
	}
}

func testCreate(t *testing.T, f *fixture) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		spec  auth.Spec
		field string // "" when it is made
	}{
		{"api reader", auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleReader}, ""},
		{"api admin for an hour", auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleAdmin, TTL: time.Hour}, ""},
		{"api without a role", auth.Spec{Kind: auth.KindAPI}, "role"},
		{"api with an unknown role", auth.Spec{Kind: auth.KindAPI, Role: "root"}, "role"},
		{"api with uses", auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleReader, MaxUses: 2}, "uses"},
		{"api for a host", auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleReader, Host: "edge-01"}, "uses"},
		{"api with a negative ttl", auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleReader, TTL: -time.Second}, "ttl"},
		{"api with a newline in its description", auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleReader, Description: "a\nb"}, "description"},
		{"api with a long description", auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleReader, Description: strings.Repeat("d", 256)}, "description"},
		{"enroll", auth.Spec{Kind: auth.KindEnroll}, ""},
		{"enroll for a host, 3 uses", auth.Spec{Kind: auth.KindEnroll, Host: "edge-01", MaxUses: 3}, ""},
		{"enroll with a role", auth.Spec{Kind: auth.KindEnroll, Role: apitype.RoleAdmin}, "role"},
		{"enroll with negative uses", auth.Spec{Kind: auth.KindEnroll, MaxUses: -1}, "uses"},
		{"enroll for a bad hostname", auth.Spec{Kind: auth.KindEnroll, Host: "Edge_01"}, "host"},
		{"enroll with a negative ttl", auth.Spec{Kind: auth.KindEnroll, TTL: -time.Hour}, "ttl"},
		{"another kind", auth.Spec{Kind: "ssh", Role: apitype.RoleReader}, "type"},
		{"no kind", auth.Spec{Role: apitype.RoleReader}, "type"},
	} {
		c, err := f.tok.CreateSpec(ctx, "test", tc.spec)
		if tc.field != "" {
			if !problem.Is(err, problem.Invalid) || problem.FieldOf(err) != tc.field {
				t.Errorf("%s: %v (field %q), want invalid %s", tc.name, err, problem.FieldOf(err), tc.field)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		// The bearer is hb_<id>.<secret>; only a hash of the secret is kept.
		id, secret, _ := strings.Cut(strings.TrimPrefix(c.Secret, "hb_"), ".")
		if !strings.HasPrefix(c.Secret, "hb_") || id != c.Token.ID || len(secret) != 32 {
			t.Errorf("%s: bearer %q does not have the form hb_%s.<32 characters>", tc.name, c.Secret, c.Token.ID)
		}
		if strings.Contains(c.Token.SecretSHA256, secret) {
			t.Errorf("%s: the stored token holds the secret", tc.name)
		}
		var wantExp *time.Time
		switch ttl := tc.spec.TTL; {
		case ttl > 0:
			wantExp = ptr(f.now.Add(ttl))
		case tc.spec.Kind == auth.KindEnroll:
			wantExp = ptr(f.now.Add(auth.DefaultEnrollTTL))
		}
		if diff := cmp.Diff(wantExp, c.Token.ExpiresAt); diff != "" {
			t.Errorf("%s: expiry (-want +got):\n%s", tc.name, diff)
		}
	}
	// What is listed is what was made, without secrets, and each creation
	// left its event.
	toks, err := f.tok.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, tok := range toks {
		kinds[tok.Kind]++
		var evs []store.Event
		if err := f.st.Read(ctx, func(tx store.Tx) error {
			var err error
			evs, err = tx.ListEvents(store.EventFilter{EntityID: "token=" + tok.ID})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Action != "token.create" || evs[0].Actor != "test" {
			t.Errorf("token %s: events %+v, want one token.create by test", tok.ID, evs)
		}
	}
	if diff := cmp.Diff(map[string]int{auth.KindAPI: 2, auth.KindEnroll: 2}, kinds); diff != "" {
		t.Errorf("listed tokens by kind (-want +got):\n%s", diff)
	}
}

func ptr[T any](v T) *T { return &v }

// otherLast returns s with its last character replaced by a different one,
// so the result never equals s whatever the secret's random characters are.
func otherLast(s string) string {
	last := s[len(s)-1]
	repl := byte('x')
	if last == repl {
		repl = 'y'
	}
	return s[:len(s)-1] + string(repl)
}

func testAuthenticate(t *testing.T, f *fixture) {
	ctx := context.Background()
	reader := f.create(t, auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleReader})
	operator := f.create(t, auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleOperator, TTL: time.Minute})
	enroll := f.create(t, auth.Spec{Kind: auth.KindEnroll})
	revoked := f.create(t, auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleOperator})
	if err := f.tok.Delete(ctx, "test", revoked.Token.ID); err != nil {
		t.Fatal(err)
	}
	_, readerSecret, _ := strings.Cut(reader.Secret, ".")
	for _, tc := range []struct {
		name, bearer string
		want         auth.Principal // zero: refused with 401
	}{
		{"reader", reader.Secret, auth.Principal{TokenID: reader.Token.ID, Role: apitype.RoleReader}},
		{"operator", operator.Secret, auth.Principal{TokenID: operator.Token.ID, Role: apitype.RoleOperator}},
		{"nothing", "", auth.Principal{}},
		{"no prefix", strings.TrimPrefix(reader.Secret, "hb_"), auth.Principal{}},
		{"no secret", "hb_" + reader.Token.ID + ".", auth.Principal{}},
		{"no id", "hb_." + readerSecret, auth.Principal{}},
		{"no dot", "hb_" + reader.Token.ID + readerSecret, auth.Principal{}},
		{"wrong secret", otherLast(reader.Secret), auth.Principal{}},
		{"another token's secret", operator.Secret[:strings.IndexByte(operator.Secret, '.')] + "." + readerSecret, auth.Principal{}},
		{"unknown id", "hb_zzzzzzzz." + readerSecret, auth.Principal{}},
		{"revoked", revoked.Secret, auth.Principal{}},
		{"an enroll token", enroll.Secret, auth.Principal{}},
	} {
		got, err := f.tok.Authenticate(ctx, tc.bearer)
		if tc.want == (auth.Principal{}) {
			if !problem.Is(err, problem.Unauthenticated) {
				t.Errorf("%s: %+v, %v; want unauthenticated", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	// The operator token lasts a minute: refused from its expiry on.
	f.now = f.now.Add(time.Minute - time.Microsecond)
	if _, err := f.tok.Authenticate(ctx, operator.Secret); err != nil {
		t.Errorf("just before its expiry: %v", err)
	}
	f.now = f.now.Add(time.Microsecond)
	if _, err := f.tok.Authenticate(ctx, operator.Secret); !problem.Is(err, problem.Unauthenticated) {
		t.Errorf("at its expiry: %v, want unauthenticated", err)
	}
}

func TestAllows(t *testing.T) {
	t.Parallel()
	roles := []string{apitype.RoleReader, apitype.RoleOperator, apitype.RoleAdmin, "", "root"}
	want := map[string][]string{ // the roles a principal's role allows
		apitype.RoleReader:   {apitype.RoleReader},
		apitype.RoleOperator: {apitype.RoleReader, apitype.RoleOperator},
		apitype.RoleAdmin:    {apitype.RoleReader, apitype.RoleOperator, apitype.RoleAdmin},
		"":                   nil,
		"root":               nil,
	}
	for _, have := range roles {
		var got []string
		for _, need := range roles {
			if (auth.Principal{TokenID: "x", Role: have}).Allows(need) {
				got = append(got, need)
			}
		}
		if diff := cmp.Diff(want[have], got); diff != "" {
			t.Errorf("role %q allows (-want +got):\n%s", have, diff)
		}
	}
	if got := (auth.Principal{TokenID: "abc"}).Actor(); got != "token:abc" {
		t.Errorf("Actor = %q", got)
	}
}

func testEnroll(t *testing.T, f *fixture) {
	anyHost := f.create(t, auth.Spec{Kind: auth.KindEnroll})
	twice := f.create(t, auth.Spec{Kind: auth.KindEnroll, MaxUses: 2})
	edge1 := f.create(t, auth.Spec{Kind: auth.KindEnroll, Host: "edge-01"})
	short := f.create(t, auth.Spec{Kind: auth.KindEnroll, TTL: time.Minute})
	api := f.create(t, auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleAdmin})
	for _, tc := range []struct {
		name, bearer, host string
		kind               problem.Kind // 0 (Internal): accepted
	}{
		{"any host", anyHost.Secret, "edge-01", 0},
		{"any host again", anyHost.Secret, "edge-02", 0},
		{"limited, first", twice.Secret, "edge-01", 0},
		{"limited, second", twice.Secret, "edge-02", 0},
		{"limited, third", twice.Secret, "edge-03", problem.Unauthenticated},
		{"its host", edge1.Secret, "edge-01", 0},
		{"another host", edge1.Secret, "edge-02", problem.Forbidden},
		{"an API token", api.Secret, "edge-01", problem.Unauthenticated},
		{"malformed", "enroll-me", "edge-01", problem.Unauthenticated},
		{"wrong secret", otherLast(anyHost.Secret), "edge-01", problem.Unauthenticated},
		{"unknown", "hb_zzzzzzzz.abc", "edge-01", problem.Unauthenticated},
	} {
		tok, err := f.useEnroll(tc.bearer, tc.host)
		if tc.kind == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !problem.Is(err, tc.kind) {
			t.Errorf("%s: %+v, %v; want %v", tc.name, tok, err, tc.kind)
		}
	}
	// The uses are counted in the store; refused uses are not.
	uses := map[string]int64{}
	toks, err := f.tok.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		uses[tok.ID] = tok.Uses
	}
	want := map[string]int64{anyHost.Token.ID: 2, twice.Token.ID: 2, edge1.Token.ID: 1, short.Token.ID: 0, api.Token.ID: 0}
	if diff := cmp.Diff(want, uses); diff != "" {
		t.Errorf("uses by token (-want +got):\n%s", diff)
	}
	f.now = f.now.Add(time.Minute)
	if _, err := f.useEnroll(short.Secret, "edge-04"); !problem.Is(err, problem.Unauthenticated) {
		t.Errorf("expired enroll token: %v, want unauthenticated", err)
	}
	if _, err := f.useEnroll(anyHost.Secret, "edge-04"); err != nil {
		t.Errorf("an enroll token within its day: %v", err)
	}
	f.now = f.now.Add(auth.DefaultEnrollTTL)
	if _, err := f.useEnroll(anyHost.Secret, "edge-05"); !problem.Is(err, problem.Unauthenticated) {
		t.Errorf("an enroll token after its default lifetime: %v, want unauthenticated", err)
	}
}

func testDelete(t *testing.T, f *fixture) {
	ctx := context.Background()
	first := f.create(t, auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleAdmin})
	if err := f.tok.Delete(ctx, "test", first.Token.ID); !problem.Is(err, problem.Conflict) {
		t.Errorf("deleting the only admin token: %v, want a conflict", err)
	}
	if err := f.tok.Delete(ctx, "test", "nosuchid"); !problem.Is(err, problem.NotFound) {
		t.Errorf("deleting an unknown token: %v, want not found", err)
	}
	// An expired admin token does not count as another admin.
	expiring := f.create(t, auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleAdmin, TTL: time.Minute})
	f.now = f.now.Add(time.Minute)
	if err := f.tok.Delete(ctx, "test", first.Token.ID); !problem.Is(err, problem.Conflict) {
		t.Errorf("deleting the last unexpired admin token: %v, want a conflict", err)
	}
	// The expired one itself can go; then, with a second admin, the first.
	if err := f.tok.Delete(ctx, "test", expiring.Token.ID); err != nil {
		t.Errorf("deleting an expired admin token: %v", err)
	}
	second := f.create(t, auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleAdmin})
	if err := f.tok.Delete(ctx, "test", first.Token.ID); err != nil {
		t.Fatalf("deleting an admin token while another is left: %v", err)
	}
	if _, err := f.tok.Authenticate(ctx, first.Secret); !problem.Is(err, problem.Unauthenticated) {
		t.Errorf("a deleted token: %v, want unauthenticated", err)
	}
	if _, err := f.tok.Authenticate(ctx, second.Secret); err != nil {
		t.Errorf("the admin token left: %v", err)
	}
	var evs []store.Event
	if err := f.st.Read(ctx, func(tx store.Tx) error {
		var err error
		evs, err = tx.ListEvents(store.EventFilter{EntityID: "token=" + first.Token.ID, Action: "token.delete"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Actor != "test" {
		t.Errorf("token.delete events of %s: %+v, want one by test", first.Token.ID, evs)
	}
}

// testKnown checks what Authenticate's memory of tokens may change: a
// token deleted through this controller is refused at once, through
// another controller on the same database a second later at most, and an
// expired one at once either way.
func testKnown(t *testing.T, f *fixture) {
	ctx := context.Background()
	other := auth.New(f.st, auth.Options{Clock: func() time.Time { return f.now }})
	f.create(t, auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleAdmin})
	check := func(what string, tok *auth.Tokens, secret string, ok bool) {
		t.Helper()
		_, err := tok.Authenticate(ctx, secret)
		switch {
		case ok && err != nil:
			t.Errorf("%s: %v, want it accepted", what, err)
		case !ok && !problem.Is(err, problem.Unauthenticated):
			t.Errorf("%s: %v, want unauthenticated", what, err)
		}
	}

	here := f.create(t, auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleReader})
	check("a new token", f.tok, here.Secret, true)
	check("a new token, on another controller", other, here.Secret, true)
	if err := f.tok.Delete(ctx, "test", here.Token.ID); err != nil {
		t.Fatal(err)
	}
	check("a token just deleted here", f.tok, here.Secret, false)
	f.now = f.now.Add(999 * time.Millisecond)
	check("a token deleted through another controller 999 ms ago", other, here.Secret, true)
	f.now = f.now.Add(time.Millisecond)
	check("a token deleted through another controller a second ago", other, here.Secret, false)

	// Deleted on the other controller, which had it known: refused there.
	there := f.create(t, auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleReader})
	check("another new token, on the other controller", other, there.Secret, true)
	if err := other.Delete(ctx, "test", there.Token.ID); err != nil {
		t.Fatal(err)
	}
	check("a token just deleted on the other controller, there", other, there.Secret, false)
	check("a token deleted on the other controller, here (never known)", f.tok, there.Secret, false)

	// Known, then expired: refused at once.
	short := f.create(t, auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleReader, TTL: time.Minute})
	f.now = f.now.Add(time.Minute - 500*time.Millisecond)
	check("a token half a second before it expires", f.tok, short.Secret, true)
	f.now = f.now.Add(500 * time.Millisecond)
	check("a known token as it expires", f.tok, short.Secret, false)

	// A wrong secret for a known token is refused.
	known := f.create(t, auth.Spec{Kind: auth.KindAPI, Role: apitype.RoleReader})
	check("a token", f.tok, known.Secret, true)
	wrong := []byte(known.Secret)
	wrong[len(wrong)-1] ^= 1 // its last character changed
	check("the same token with another secret", f.tok, string(wrong), false)
}

func testBootstrap(t *testing.T, f *fixture) {
	ctx := context.Background()
	// Enroll tokens are not API tokens: they leave the controller without
	// an admin.
	f.create(t, auth.Spec{Kind: auth.KindEnroll})
	secret, err := f.tok.Bootstrap(ctx)
	if err != nil || secret == "" {
		t.Fatalf("first bootstrap: %q, %v; want a secret", secret, err)
	}
	p, err := f.tok.Authenticate(ctx, secret)
	if err != nil || p.Role != apitype.RoleAdmin {
		t.Errorf("the first token: %+v, %v; want an admin", p, err)
	}
	if again, err := f.tok.Bootstrap(ctx); err != nil || again != "" {
		t.Errorf("second bootstrap: %q, %v; want nothing made", again, err)
	}
}
