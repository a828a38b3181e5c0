package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// cgroupExec moves the shell into every cgroup named in HB_CGROUP_DIRS, then runs the program.
// Moving before exec puts the program and everything it starts in the bed's cgroups from its
// first instruction, where teardown finds them.
const cgroupExec = `for d in $HB_CGROUP_DIRS; do echo $$ >"$d/cgroup.procs" || exit 1; done
unset HB_CGROUP_DIRS
exec "$@"`

// daemon is a program started by startDaemon.
type daemon struct {
	name string
	done chan struct{} // closed when the program has exited
}

// startDaemon starts a program that outlives the caller, in the cgroup rel (made if missing),
// in a session of its own, with its output appended to logFile.
func startDaemon(rel, logFile string, env []string, name string, args ...string) (*daemon, error) {
	dirs, err := makeCgroup(rel)
	if err != nil {
		return nil, err
	}
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the log of %s: %w", name, err)
	}
	defer log.Close()
	cmd := exec.Command("/bin/sh", append([]string{"-c", cgroupExec, "sh", name}, args...)...)
	cmd.Env = append(append(os.Environ(), env...), "HB_CGROUP_DIRS="+strings.Join(dirs, " "))
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	d := &daemon{name: name, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// waitFor is waitFor that gives up as soon as the daemon exits.
func (d *daemon) waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-d.done:
			cancel(fmt.Errorf("%s exited", d.name))
		case <-ctx.Done():
		}
	}()
	if err := waitFor(ctx, what, check); err != nil {
		if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
			return fmt.Errorf("%w: %w", err, cause)
		}
		return err
	}
	return nil
}
