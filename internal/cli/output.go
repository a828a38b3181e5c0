package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// formats hbctl can print reads in.
var formats = []string{"table", "json", "yaml", "value"}

// field is one named value of a record, in display order.
type field struct{ name, value string }

// view is something hbctl prints: the raw object for json and yaml, and
// rows of fields for table and value.
type view struct {
	raw  any
	rows [][]field
	// list says whether rows are records of a list (one table row each) or
	// the fields of one object (a Property/Value table).
	list bool
	// names are a list's default columns: shown when no --column is given,
	// and the header of an empty list. Rows may carry more fields.
	names []string
}

// print writes v in format, keeping only columns when any are named.
func print(w io.Writer, format string, columns []string, v view) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v.raw, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(escapeJSON(b)))
		return err
	case "yaml":
		// Through JSON, so the field names are the API's.
		b, err := json.Marshal(v.raw)
		if err != nil {
			return err
		}
		var generic any
		if err := json.Unmarshal(b, &generic); err != nil {
			return err
		}
		var doc yaml.Node
		if err := doc.Encode(generic); err != nil {
			return err
		}
		quoteUnprintable(&doc)
		out, err := yaml.Marshal(&doc)
		if err != nil {
			return err
		}
		_, err = w.Write(escapeJSON(out))
		return err
	case "table", "value":
	default:
		return fmt.Errorf("--format %q: use one of %s", format, strings.Join(formats, ", "))
	}
	if len(columns) == 0 && v.list {
		columns = v.names
	}
	rows, err := selectColumns(v.rows, columns)
	if err != nil {
		return err
	}
	for _, r := range rows {
		for i := range r {
			r[i].value = escapeText(r[i].value)
		}
	}
	if format == "value" {
		for _, r := range rows {
			vals := make([]string, len(r))
			for i, f := range r {
				vals[i] = f.value
			}
			if v.list {
				fmt.Fprintln(w, strings.Join(vals, " "))
			} else {
				fmt.Fprintln(w, strings.Join(vals, "\n"))
			}
		}
		return nil
	}
	if !v.list {
		var props [][]string
		for _, r := range rows {
			for _, f := range r {
				props = append(props, []string{f.name, f.value})
			}
		}
		table(w, []string{"Property", "Value"}, props)
		return nil
	}
	header := columns
	cells := make([][]string, len(rows))
	for i, r := range rows {
		for _, f := range r {
			cells[i] = append(cells[i], f.value)
		}
	}
	table(w, header, cells)
	return nil
}

func selectColumns(rows [][]field, columns []string) ([][]field, error) {
	if len(columns) == 0 {
		return rows, nil
	}
	out := make([][]field, len(rows))
	for i, r := range rows {
		for _, c := range columns {
			found := false
			for _, f := range r {
				if f.name == c {
					out[i] = append(out[i], f)
					found = true
				}
			}
			if !found {
				names := make([]string, len(r))
				for j, f := range r {
					names[j] = f.name
				}
				return nil, fmt.Errorf("--column %q: the columns are %s", c, strings.Join(names, ", "))
			}
		}
	}
	return out, nil
}

// table draws a bordered table, as StarlingX's CLI does.
func table(w io.Writer, header []string, rows [][]string) {
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			if n := utf8.RuneCountInString(c); n > width[i] {
				width[i] = n
			}
		}
	}
	var rule strings.Builder
	rule.WriteString("+")
	for _, n := range width {
		rule.WriteString(strings.Repeat("-", n+2) + "+")
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)) + " |")
		}
		fmt.Fprintln(w, b.String())
	}
	fmt.Fprintln(w, rule.String())
	line(header)
	fmt.Fprintln(w, rule.String())
	for _, r := range rows {
		line(r)
	}
	fmt.Fprintln(w, rule.String())
}
