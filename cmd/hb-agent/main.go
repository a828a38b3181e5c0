// Command hb-agent runs on every edge node: it joins the node to the
// Hummingbird controller, then sends low-frequency heartbeats and the
// hardware inventory, dialling out over L2, routed L3 or a tunnel; on
// members of redundant apps it runs their failover. It is kept small: the
// standard library, Hummingbird's agent packages and the raft library.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"hummingbird.io/hummingbird/internal/agent"
	"hummingbird.io/hummingbird/internal/version"
	"hummingbird.io/hummingbird/internal/wire"
)

const usage = `hb-agent joins this node to a Hummingbird controller and keeps it reporting.

  hb-agent join --controller https://CONTROLLER:6385 --token-file PATH|- --ca-hash sha256:…
  hb-agent run
  hb-agent version

Every flag also reads an HB_ environment variable (--state-dir: HB_STATE_DIR).
`

func main() {
	// The agent's memory is a product feature: collect garbage at half
	// the default heap growth, unless GOGC says otherwise.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hb-agent:", err)
		os.Exit(1)
	}
}

// envName is the variable of a flag: --state-dir is HB_STATE_DIR.
func envName(flag string) string {
	return "HB_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// parse parses args, then fills every flag not given from its variable.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " (env " + envName(f.Name) + ")" })
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && !given[f.Name] && err == nil {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, serr)
			}
		}
	})
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return err
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("say join, run or version")
	}
	const defaultState = "/var/lib/hummingbird/agent"
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, version.String())
		return nil
	case "join":
		fs := flag.NewFlagSet("join", flag.ContinueOnError)
		fs.SetOutput(stderr)
		var o agent.JoinOptions
		host, _ := os.Hostname()
		fs.StringVar(&o.Controller, "controller", "", "controller URL, https://CONTROLLER:6385; several separated by commas, of controllers that share a database: heartbeats go to one that answers")
		fs.StringVar(&o.Token, "token", "", "enroll token (hbctl token-create --type enroll); --token-file keeps it out of the process list")
		var tokenFile string
		fs.StringVar(&tokenFile, "token-file", "", "file holding the enroll token, or - for standard input")
		fs.StringVar(&o.CAHash, "ca-hash", "", "sha256:… pin of the controller CA, from its first-start log line")
		fs.StringVar(&o.Hostname, "hostname", host, "the host's name in the inventory")
		fs.StringVar(&o.StateDir, "state-dir", defaultState, "where the key, certificate and CA are kept")
		var ifNeeded bool
		fs.BoolVar(&ifNeeded, "if-needed", false, "do nothing when this node has already joined (for init containers and provisioning)")
		if err := parse(fs, args[1:], getenv); err != nil {
			return err
		}
		if ifNeeded && agent.Joined(o.StateDir) {
			fmt.Fprintln(stdout, "already joined; nothing to do")
			return nil
		}
		if tokenFile != "" {
			if o.Token != "" {
				return errors.New("give the enroll token once: --token or --token-file, not both")
			}
			var err error
			if o.Token, err = readToken(tokenFile, stdin); err != nil {
				return err
			}
		}
		if o.Controller == "" || o.Token == "" || o.CAHash == "" {
			return errors.New("join needs --controller, --token-file (or --token) and --ca-hash")
		}
		resp, err := agent.Join(ctx, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "joined as host %s (%s); start the agent with: hb-agent run\n", resp.Hostname, resp.HostUUID)
		return nil
	case "run":
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		fs.SetOutput(stderr)
		var (
			o      agent.RunOptions
			format string
		)
		fs.StringVar(&o.StateDir, "state-dir", defaultState, "where hb-agent join kept the key, certificate and CA")
		fs.StringVar(&format, "log-format", "text", "text or json")
		var hostRoot string
		fs.StringVar(&hostRoot, "host-root", "", "where the host's /proc, /sys and /etc are mounted when the agent runs in a container, like /host")
		fs.StringVar(&o.FailoverListen, "failover-listen", ":"+strconv.Itoa(wire.FailoverPort), "where redundant apps' members reach this agent (opened once the host has an app)")
		fs.StringVar(&o.LocalSocket, "local-socket", "/run/hummingbird/agent.sock", "unix socket where apps on this node ask whether they are active")
		fs.StringVar(&o.ReadyListen, "ready-listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(wire.ReadyPort)), "loopback HTTPS address of the readiness probe of apps' pods: ready on the active member only")
		if err := parse(fs, args[1:], getenv); err != nil {
			return err
		}
		h := slog.Handler(slog.NewTextHandler(stderr, nil))
		if format == "json" {
			h = slog.NewJSONHandler(stderr, nil)
		}
		o.Log = slog.New(h).With("logger", "agent")
		o.Collect = collector(hostRoot, o.Log.Warn)
		o.RaftLog = stderr
		return agent.Run(ctx, o)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// maxTokenBytes bounds what readToken reads: a token is about 45 bytes.
const maxTokenBytes = 4096

// readToken reads the enroll token from path, or from stdin when path is
// "-": the first line, without the spaces around it.
func readToken(path string, stdin io.Reader) (string, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxTokenBytes))
	if err != nil {
		return "", fmt.Errorf("--token-file %s: %w", path, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if tok := strings.TrimSpace(line); tok != "" {
		return tok, nil
	}
	return "", fmt.Errorf("--token-file %s holds no token: write the enroll token (hbctl token-create --type enroll) on its first line", path)
}
