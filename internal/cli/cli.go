// Package cli is hbctl, Hummingbird's command-line client: a thin layer
// over package client whose grammar follows StarlingX's system CLI
// (host-add, host-list, host-show, host-update, …). Settings layer as
// defaults, then ~/.config/hummingbird/hbctl.yaml (or --config), then HB_
// environment variables (HB_URL, HB_TOKEN, HB_CACERT, …), then flags.
package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/config"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/problem"
)

// IO is where hbctl reads and writes.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	// Interactive says whether In is a person at a terminal (for prompts).
	Interactive bool
}

// globals are the settings every command shares.
type globals struct {
	url, token, tokenFile, cacert, configFile string
	format                                    string
	columns                                   []string
	timeout                                   time.Duration
}

// app is one run of hbctl.
type app struct {
	io     IO
	getenv func(string) string
	g      globals
}

// New returns the hbctl command tree. getenv is the environment.
func New(stdio IO, getenv func(string) string) *cobra.Command {
	a := &app{io: stdio, getenv: getenv}
	root := &cobra.Command{
		Use:   "hbctl",
		Short: "Manage Hummingbird edge nodes and hosts",
		Long: `hbctl manages the hosts of a Hummingbird controller.

Point it at the controller with HB_URL (default https://localhost:6385),
trust the controller's CA with HB_CACERT (data/ca.crt on the controller),
and authenticate with HB_TOKEN or HB_TOKEN_FILE (data/admin.token at first).
Every flag also has an HB_ variable and a key in the --config YAML file.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: a.load,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	pf := root.PersistentFlags()
	pf.StringVar(&a.g.url, "url", "https://localhost:6385", "controller URL; several separated by commas, of controllers that share a database: the first that answers")
	pf.StringVar(&a.g.token, "token", "", "API token (hb_…)")
	pf.StringVar(&a.g.tokenFile, "token-file", "", "file holding the API token, e.g. data/admin.token")
	pf.StringVar(&a.g.cacert, "cacert", "", "CA certificate to trust, e.g. data/ca.crt (default: the system's CAs)")
	pf.StringVar(&a.g.configFile, "config", "", "YAML settings file (default ~/.config/hummingbird/hbctl.yaml when present)")
	pf.StringVarP(&a.g.format, "format", "f", "table", "output format of reads: "+strings.Join(formats, ", "))
	pf.StringSliceVarP(&a.g.columns, "column", "c", nil, "show only these columns (repeat or comma-separate)")
	pf.DurationVar(&a.g.timeout, "timeout", 30*time.Second, "how long one request may take")
	_ = root.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))

	for _, g := range []struct {
		id, title string
		cmds      [][]*cobra.Command
	}{
		{"hosts", "Hosts:", [][]*cobra.Command{a.hostCommands(), a.lockCommands(), a.provisionCommands(), a.groupCommands(), a.appCommands(), a.labelCommands(), a.hardwareCommands()}},
		{"net", "Management network:", [][]*cobra.Command{a.poolCommands()}},
		{"fault", "Alarms:", [][]*cobra.Command{a.faultCommands()}},
		{"admin", "Tokens and events:", [][]*cobra.Command{a.adminCommands()}},
	} {
		root.AddGroup(&cobra.Group{ID: g.id, Title: g.title})
		for _, cmds := range g.cmds {
			for _, c := range cmds {
				c.GroupID = g.id
				root.AddCommand(c)
			}
		}
	}
	root.AddCommand(a.versionCommand(), a.clusterCommand(), a.controllerList(), a.controllerDelete(), a.caShow())
	root.InitDefaultCompletionCmd()
	documentEnv(root)
	return root
}

func documentEnv(c *cobra.Command) {
	config.DocumentEnv(c.LocalNonPersistentFlags())
	config.DocumentEnv(c.PersistentFlags())
	for _, sub := range c.Commands() {
		documentEnv(sub)
	}
}

// load layers the settings: the file sets only the shared flags; the
// environment sets any flag of the command.
func (a *app) load(cmd *cobra.Command, _ []string) error {
	if cmd.Name() == "completion" || cmd.HasParent() && cmd.Parent().Name() == "completion" || cmd.Name() == cobra.ShellCompRequestCmd {
		return nil
	}
	path, required := a.g.configFile, true
	if !cmd.Flags().Changed("config") {
		if v := a.getenv(config.EnvName("config")); v != "" {
			path = v
		} else if home := a.getenv("HOME"); home != "" {
			path, required = filepath.Join(home, ".config", "hummingbird", "hbctl.yaml"), false
		}
	}
	file, err := config.ReadFile(path, required)
	if err != nil {
		return err
	}
	if err := config.Apply(cmd.Root().PersistentFlags(), file, a.getenv); err != nil {
		return err
	}
	if err := config.Apply(cmd.LocalNonPersistentFlags(), nil, a.getenv); err != nil {
		return err
	}
	for _, f := range formats {
		if a.g.format == f {
			return nil
		}
	}
	return fmt.Errorf("--format %q: use one of %s", a.g.format, strings.Join(formats, ", "))
}

// client builds the API client from the settings.
func (a *app) client() (*client.Client, error) {
	token := a.g.token
	if token == "" && a.g.tokenFile != "" {
		b, err := os.ReadFile(a.g.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, errors.New("no API token: set HB_TOKEN or HB_TOKEN_FILE (the controller writes data/admin.token at first start)")
	}
	o := client.Options{URL: a.g.url, Token: token, UserAgent: "hbctl", Timeout: a.g.timeout}
	if a.g.cacert != "" {
		b, err := os.ReadFile(a.g.cacert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		if o.Roots, err = pki.Pool(b); err != nil {
			return nil, fmt.Errorf("--cacert %s: %w", a.g.cacert, err)
		}
	}
	return client.New(o)
}

// withClient wraps a command body that needs the API.
func (a *app) withClient(fn func(ctx context.Context, c *client.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		return fn(cmd.Context(), c, args)
	}
}

func (a *app) show(v view) error { return print(a.io.Out, a.g.format, a.g.columns, v) }

// nextPage tells on standard error how to show the page after the one
// shown, when one follows: next is its marker.
func (a *app) nextPage(what, next string) {
	if next != "" {
		fmt.Fprintf(a.io.Err, "More %s follow: add --marker %s for the next page.\n", what, escapeText(next))
	}
}

// confirm asks a yes/no question; without a terminal it refuses.
func (a *app) confirm(question string) (bool, error) {
	if !a.io.Interactive {
		return false, errors.New("not asking without a terminal: add --yes to confirm")
	}
	fmt.Fprintf(a.io.Err, "%s [y/N] ", question)
	line, err := bufio.NewReader(a.io.In).ReadString('\n')
	if err != nil && line == "" {
		return false, nil
	}
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes", nil
}

// Main runs hbctl and returns the process exit code: 0, 1 for an error, 2
// for a mistake in the command line.
func Main(ctx context.Context, args []string, stdio IO, getenv func(string) string) int {
	root := New(stdio, getenv)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	msg := err.Error()
	if f := problem.FieldOf(err); f != "" && !strings.Contains(msg, f) {
		msg += " (field " + f + ")"
	}
	fmt.Fprintln(stdio.Err, "Error:", escapeText(msg))
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// usageError is a mistake in the command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// args checks the number of positional arguments and names them in the
// error, and that the command's required flags are given, on the command
// line or in their HB_ variables.
func (a *app) args(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, got []string) error {
		if len(got) != len(names) {
			return &usageError{fmt.Errorf("%s takes %d argument(s): %s; see hbctl %s --help",
				cmd.Name(), len(names), strings.Join(names, " "), cmd.Name())}
		}
		return a.requiredFlags(cmd)
	}
}

// required marks flags a command cannot do without.
func required(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		_ = cmd.Flags().SetAnnotation(n, requiredAnnotation, []string{"true"})
	}
}

const requiredAnnotation = "hummingbird_required"

func (a *app) requiredFlags(cmd *cobra.Command) error {
	var missing []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if _, ok := f.Annotations[requiredAnnotation]; ok && !f.Changed && a.getenv(config.EnvName(f.Name)) == "" {
			missing = append(missing, "--"+f.Name)
		}
	})
	if len(missing) > 0 {
		return &usageError{fmt.Errorf("%s needs %s; see hbctl %s --help", cmd.Name(), strings.Join(missing, " and "), cmd.Name())}
	}
	return nil
}
