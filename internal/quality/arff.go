package quality

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A ParseError is an error of LoadARFF at a line of its input.
type ParseError struct {
	Line int // 1 for the first line; the last one for an error at the end
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("arff: line %d: %s", e.Line, e.Msg) }

// LoadARFF reads a market-basket data set in Weka's ARFF format, as in
// supermarket.arff: every attribute declared as {t} is an item, named
// after the attribute; each data row is a basket holding the items whose
// value is t (? is absent). Other attributes (numeric, string, date, or
// nominal with other values, such as supermarket's "total {low, high}")
// are read and ignored. Names and values may be quoted with ' or ", with
// backslash escapes; % starts a comment outside quotes; blank lines are
// skipped; keywords are case-insensitive. The data set is named after
// @relation. Sparse rows ({index value, ...}), instance weights and
// relational attributes are not supported and are reported as errors.
// Errors are *ParseError, with the line.
func LoadARFF(r io.Reader) (Dataset, error) {
	type attr struct {
		name string
		item bool
		line int
	}
	var (
		d       Dataset
		attrs   []attr
		items   = make(map[string]int) // item name → declaring line
		inData  bool
		lineNo  int
		sawRel  bool
		br      = bufio.NewReader(r)
		readErr error
	)
	fail := func(format string, args ...any) (Dataset, error) {
		return Dataset{}, &ParseError{Line: max(lineNo, 1), Msg: fmt.Sprintf(format, args...)}
	}
	for readErr == nil {
		var raw string
		raw, readErr = br.ReadString('\n')
		if readErr != nil && readErr != io.EOF {
			return Dataset{}, fmt.Errorf("arff: reading line %d: %w", lineNo+1, readErr)
		}
		if raw == "" && readErr == io.EOF {
			break
		}
		lineNo++
		line, err := stripComment(raw)
		if err != nil {
			return fail("%v", err)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if inData {
			if line[0] == '{' {
				return fail("sparse data rows ({index value, ...}) are not supported")
			}
			fields, err := splitFields(line)
			if err != nil {
				return fail("%v", err)
			}
			if len(fields) != len(attrs) {
				return fail("%d values, want one per attribute (%d)", len(fields), len(attrs))
			}
			var b []string
			for i, f := range fields {
				if !attrs[i].item {
					continue
				}
				switch f {
				case "t":
					b = append(b, attrs[i].name)
				case "?":
				default:
					return fail("value %q of attribute %q (column %d), want t or ?", f, attrs[i].name, i+1)
				}
			}
			d.Baskets = append(d.Baskets, set(b))
			continue
		}
		if line[0] != '@' {
			return fail("%q before @data: want @relation, @attribute or @data", clip(line))
		}
		kw, rest := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			kw, rest = line[:i], line[i+1:]
		}
		rest = strings.TrimSpace(rest)
		switch strings.ToLower(kw) {
		case "@relation":
			if sawRel {
				return fail("a second @relation")
			}
			if len(attrs) > 0 {
				return fail("@relation after @attribute")
			}
			name, tail, err := token(rest)
			if err != nil {
				return fail("@relation: %v", err)
			}
			if name == "" || strings.TrimSpace(tail) != "" {
				return fail("@relation: want one name, got %q", clip(rest))
			}
			d.Name, sawRel = name, true
		case "@attribute":
			name, typ, err := token(rest)
			if err != nil {
				return fail("@attribute: %v", err)
			}
			if name == "" {
				return fail("@attribute without a name")
			}
			a := attr{name: name, line: lineNo}
			typ = strings.TrimSpace(typ)
			switch {
			case strings.HasPrefix(typ, "{"):
				if !strings.HasSuffix(typ, "}") {
					return fail("@attribute %q: nominal values %q lack a closing }", name, clip(typ))
				}
				values, err := splitFields(typ[1 : len(typ)-1])
				if err != nil {
					return fail("@attribute %q: %v", name, err)
				}
				if slices.Contains(values, "") {
					return fail("@attribute %q: an empty nominal value in %s", name, clip(typ))
				}
				a.item = len(values) == 1 && values[0] == "t"
			default:
				switch t, _, _ := strings.Cut(strings.ToLower(typ), " "); t {
				case "numeric", "real", "integer", "string", "date":
				case "relational":
					return fail("@attribute %q: relational attributes are not supported", name)
				case "":
					return fail("@attribute %q without a type", name)
				default:
					return fail("@attribute %q: unknown type %q", name, clip(typ))
				}
			}
			if a.item {
				if first, dup := items[name]; dup {
					return fail("item attribute %q declared twice (first on line %d)", name, first)
				}
				items[name] = lineNo
			}
			attrs = append(attrs, a)
		case "@data":
			if rest != "" {
				return fail("unexpected %q after @data", clip(rest))
			}
			if len(items) == 0 {
				return fail("@data without any {t} attribute: not a market-basket file")
			}
			inData = true
		default:
			return fail("unknown keyword %s", clip(kw))
		}
	}
	if !inData {
		return fail("no @data section (at the end of the input)")
	}
	return d, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// stripComment returns line without its comment: from a % outside quotes
// to the end.
func stripComment(line string) (string, error) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == '\\':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '\'' || c == '"':
			quote = c
		case c == '%':
			return line[:i], nil
		}
	}
	if quote != 0 {
		return "", fmt.Errorf("unterminated %c quote", quote)
	}
	return line, nil
}

// token returns the first name of s, unquoted, and what follows it. An
// unquoted name ends at a blank or a {.
func token(s string) (name, rest string, err error) {
	s = strings.TrimLeft(s, " \t")
	if s == "" {
		return "", "", nil
	}
	if q := s[0]; q == '\'' || q == '"' {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch c := s[i]; {
			case c == '\\' && i+1 < len(s):
				i++
				b.WriteByte(unescape(s[i]))
			case c == q:
				return b.String(), s[i+1:], nil
			default:
				b.WriteByte(c)
			}
		}
		return "", "", fmt.Errorf("unterminated %c quote", q)
	}
	end := strings.IndexAny(s, " \t{")
	if end < 0 {
		end = len(s)
	}
	return s[:end], s[end:], nil
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	}
	return c
}

// splitFields splits s at the commas outside quotes, and returns the
// fields trimmed and unquoted.
func splitFields(s string) ([]string, error) {
	var out []string
	for {
		s = strings.TrimLeft(s, " \t")
		var f string
		if s != "" && (s[0] == '\'' || s[0] == '"') {
			name, rest, err := token(s)
			if err != nil {
				return nil, err
			}
			rest = strings.TrimLeft(rest, " \t")
			if rest != "" && rest[0] != ',' {
				return nil, fmt.Errorf("%q after the quoted value %q", clip(rest), clip(name))
			}
			f, s = name, rest
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			f, s = strings.TrimRight(s[:end], " \t"), s[end:]
			if strings.ContainsAny(f, "'\"") {
				return nil, fmt.Errorf("a quote inside the value %q", clip(f))
			}
		}
		out = append(out, f)
		if s == "" {
			return out, nil
		}
		s = s[1:] // the comma
	}
}

// WriteARFF writes d in the format LoadARFF reads: one {t} attribute per
// item that occurs in d, in sorted order, and one dense row per basket.
func WriteARFF(w io.Writer, d Dataset) error {
	var items []string
	for _, b := range d.Baskets {
		items = append(items, b...)
	}
	items = set(items)
	col := make(map[string]int, len(items))
	bw := bufio.NewWriter(w)
	name := d.Name
	if name == "" {
		name = "baskets"
	}
	fmt.Fprintf(bw, "@relation %s\n", quote(name))
	for i, it := range items {
		col[it] = i
		fmt.Fprintf(bw, "@attribute %s {t}\n", quote(it))
	}
	bw.WriteString("@data\n")
	row := make([]byte, 0, 2*len(items))
	for _, b := range d.Baskets {
		row = row[:0]
		for range items {
			row = append(row, "?,"...)
		}
		for _, it := range b {
			row[2*col[it]] = 't'
		}
		if len(row) > 0 {
			row[len(row)-1] = '\n'
		}
		bw.Write(row)
	}
	return bw.Flush()
}

// quote returns s in single quotes, with backslash escapes.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// LoadFile reads the ARFF file at path.
func LoadFile(path string) (Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return Dataset{}, err
	}
	defer f.Close()
	d, err := LoadARFF(f)
	if err != nil {
		return Dataset{}, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// SupermarketEnv names the environment variable that gives the path of
// supermarket.arff.
const SupermarketEnv = "TAILOR_SUPERMARKET"

// ErrNoSupermarket is returned (wrapped) by FindSupermarket when the file
// is in none of the places it looks.
var ErrNoSupermarket = errors.New("supermarket.arff not found")

// SupermarketPaths returns the places FindSupermarket looks, in order: the
// path in $TAILOR_SUPERMARKET when set (then only it), Debian's weka
// package's copy, and the copy .ci/run fetches into the user's cache
// directory ($XDG_CACHE_HOME/tailor, or ~/.cache/tailor on Linux).
func SupermarketPaths() []string {
	if p := os.Getenv(SupermarketEnv); p != "" {
		return []string{p}
	}
	paths := []string{"/usr/share/doc/weka/examples/supermarket.arff"}
	if dir, err := os.UserCacheDir(); err == nil {
		paths = append(paths, filepath.Join(dir, "tailor", "supermarket.arff"))
	}
	return paths
}

// FindSupermarket returns the path of Weka's supermarket.arff, the first
// of SupermarketPaths that exists, or an error wrapping ErrNoSupermarket
// that says where it looked and how to get the file. The file is not part
// of tailor: it comes with Weka (GPL), in Debian's weka package.
func FindSupermarket() (string, error) {
	paths := SupermarketPaths()
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w in %s: fetch it with `cd /tmp && apt-get download weka && dpkg-deb --fsys-tarfile weka_*.deb | tar -xO ./usr/share/doc/weka/examples/supermarket.arff > supermarket.arff` and set %s=/tmp/supermarket.arff (.ci/run puts it in the last place)",
		ErrNoSupermarket, strings.Join(paths, ", "), SupermarketEnv)
}
