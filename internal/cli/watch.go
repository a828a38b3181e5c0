package cli

import (
	"context"
	"fmt"
	"time"
)

// frame is how a long operation looks at one poll: a status line for a terminal (drawn over the
// last one), a line for a log (printed when it changes), and whether the operation has ended.
type frame struct {
	bar, line string
	done      bool
}

// watch polls an operation every second until it ends, showing its progress on standard error,
// and returns its last state. Each poll has the command's --timeout, not the whole wait.
func watch[T any](ctx context.Context, a *app, cur T, look func(T) frame, poll func(context.Context) (T, error)) (T, error) {
	last := ""
	for {
		f := look(cur)
		if a.io.Interactive {
			fmt.Fprintf(a.io.Err, "\r\033[K%s", escapeText(f.bar))
		} else if f.line != last {
			fmt.Fprintln(a.io.Err, escapeText(f.line))
			last = f.line
		}
		if f.done {
			break
		}
		if err := sleep(ctx, time.Second); err != nil {
			return cur, err
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.g.timeout)
		next, err := poll(pctx)
		cancel()
		if err != nil {
			return cur, err
		}
		cur = next
	}
	if a.io.Interactive {
		fmt.Fprintln(a.io.Err)
	}
	return cur, nil
}
