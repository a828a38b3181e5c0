package testbed

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// run runs a program to completion and returns its standard output. On failure the error holds
// the command line and what the program wrote to standard error.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return runInput(ctx, nil, name, args...)
}

// runInput is run with data on the program's standard input.
func runInput(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
