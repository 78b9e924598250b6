package policies

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// The decoder walks the YAML syntax tree against the Policy's Go types
// itself instead of calling yaml.Unmarshal: that way it can report every
// problem at once (Unmarshal stops at the first), name the field path of
// each one, and remember where every value was written so the semantic
// checks afterwards can point at the right file, line and column.
//
// Merge rules, the same for the defaults and an operator's file:
//   - a mapping of a struct merges key by key: a key left out keeps its value;
//   - a list replaces the whole list (an operator restates the admin networks
//     rather than appending to ours, so nobody inherits a range by surprise);
//   - a free-form map (baseline.sysctl) merges key by key, so one extra
//     sysctl does not mean restating the defaults;
//   - a scalar replaces the value.

// loc is where a value was written.
type loc struct {
	file      string
	line, col int
}

// positions maps a field path ("network.ssh_admin_networks[1]") to where its
// effective value came from.
type positions map[string]loc

// lookup finds the place of path, or of its nearest written ancestor.
func (p positions) lookup(path string) loc {
	for path != "" {
		if l, ok := p[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return p[""]
}

// forget drops every recorded element of a list before it is replaced.
func (p positions) forget(prefix string) {
	for k := range p {
		if strings.HasPrefix(k, prefix+"[") {
			delete(p, k)
		}
	}
}

func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// decoder decodes one file over a Policy, collecting every error.
type decoder struct {
	file string
	pos  positions
	errs []error
}

// decodeFile merges data (the contents of file) into p.
func decodeFile(file string, data []byte, p *Policy, pos positions) []error {
	d := &decoder{file: file, pos: pos}
	// Duplicate keys are detected by the walk below, which can name their
	// field path; the parser's own check only knows the line.
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		return []error{d.syntaxError(err)}
	}
	if _, ok := pos[""]; !ok {
		pos[""] = loc{file: file, line: 1, col: 1}
	}
	docs := nonEmptyDocs(f)
	if len(docs) > 1 {
		d.errorf(docs[1], "", "more than one YAML document (---); a policy is one document")
		return d.errs
	}
	if len(docs) == 1 {
		d.value("", docs[0].Body, reflect.ValueOf(p).Elem())
	}
	return d.errs
}

func nonEmptyDocs(f *ast.File) []*ast.DocumentNode {
	var out []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			out = append(out, doc)
		}
	}
	return out
}

func (d *decoder) syntaxError(err error) error {
	var se *yaml.SyntaxError
	if errors.As(err, &se) && se.Token != nil {
		return &Error{File: d.file, Line: se.Token.Position.Line, Col: se.Token.Position.Column,
			Field: "(yaml)", Msg: "syntax error: " + se.GetMessage()}
	}
	return &Error{File: d.file, Field: "(yaml)", Msg: "syntax error: " + err.Error()}
}

func (d *decoder) errorf(n ast.Node, field, format string, args ...any) {
	l := d.where(n)
	d.errs = append(d.errs, &Error{File: l.file, Line: l.line, Col: l.col, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) where(n ast.Node) loc {
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return loc{file: d.file}
	}
	return loc{file: d.file, line: tk.Position.Line, col: tk.Position.Column}
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// value decodes n into v, which is addressable, and records its place.
func (d *decoder) value(path string, n ast.Node, v reflect.Value) {
	n, ok := d.unwrap(path, n)
	if !ok {
		return
	}
	if path != "" {
		d.pos[path] = d.where(n)
	}
	switch {
	case reflect.PointerTo(v.Type()).Implements(textUnmarshaler):
		d.text(path, n, v)
	case v.Kind() == reflect.Struct:
		d.structure(path, n, v)
	case v.Kind() == reflect.Map:
		d.mapping(path, n, v)
	case v.Kind() == reflect.Slice:
		d.sequence(path, n, v)
	default:
		d.scalar(path, n, v)
	}
}

// unwrap strips anchors and tags; aliases and merge keys are refused because
// a reviewer reading the policy should see every value where it applies.
func (d *decoder) unwrap(path string, n ast.Node) (ast.Node, bool) {
	for {
		switch t := n.(type) {
		case *ast.AnchorNode:
			n = t.Value
		case *ast.TagNode:
			n = t.Value
		case *ast.AliasNode:
			d.errorf(n, path, "YAML aliases (*name) are not supported; write the value out")
			return nil, false
		default:
			return n, n != nil
		}
	}
}

// entries returns a mapping's key/value pairs; null is an empty mapping.
func (d *decoder) entries(path string, n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch t := n.(type) {
	case *ast.MappingNode:
		return t.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{t}, true
	case *ast.NullNode:
		return nil, true
	}
	d.errorf(n, fieldOrTop(path), "want a mapping of keys, got %s", describe(n))
	return nil, false
}

func fieldOrTop(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

// key returns an entry's key text, refusing merge keys and duplicates.
// field names the key's path: a struct field (a.b) or a map entry (a[b]).
func (d *decoder) key(path string, e *ast.MappingValueNode, seen map[string]loc, field func(path, key string) string) (string, bool) {
	if _, ok := e.Key.(*ast.MergeKeyNode); ok {
		d.errorf(e.Key, fieldOrTop(path), "YAML merge keys (<<) are not supported; write the keys out")
		return "", false
	}
	k := e.Key.GetToken().Value
	if first, dup := seen[k]; dup {
		d.errorf(e.Key, field(path, k), "duplicate key %q (first set at line %d:%d); one would silently replace the other",
			k, first.line, first.col)
		return "", false
	}
	seen[k] = d.where(e.Key)
	return k, true
}

func index(path, key string) string { return path + "[" + key + "]" }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) structure(path string, n ast.Node, v reflect.Value) {
	items, ok := d.entries(path, n)
	if !ok {
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]loc{}
	for _, e := range items {
		k, ok := d.key(path, e, seen, join)
		if !ok {
			continue
		}
		i, known := fields[k]
		if !known {
			d.errorf(e.Key, join(path, k), "unknown key %q (known keys here: %s)", k, knownKeys(fields))
			continue
		}
		d.value(join(path, k), e.Value, v.Field(i))
	}
}

// yamlFields maps a struct's YAML key to its field index.
func yamlFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out[name] = i
		}
	}
	return out
}

func knownKeys(fields map[string]int) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

func (d *decoder) mapping(path string, n ast.Node, v reflect.Value) {
	items, ok := d.entries(path, n)
	if !ok {
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := map[string]loc{}
	for _, e := range items {
		k, ok := d.key(path, e, seen, index)
		if !ok {
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		before := len(d.errs)
		d.value(index(path, k), e.Value, elem)
		if len(d.errs) == before {
			v.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), elem)
		}
	}
}

func (d *decoder) sequence(path string, n ast.Node, v reflect.Value) {
	d.pos.forget(path)
	var items []ast.Node
	switch t := n.(type) {
	case *ast.NullNode:
	case *ast.SequenceNode:
		items = t.Values
	default:
		d.errorf(n, path, "want a list ([a, b] or one \"- item\" per line), got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, item := range items {
		d.value(fmt.Sprintf("%s[%d]", path, i), item, s.Index(i))
	}
	v.Set(s)
}

// text decodes scalar text through the type's UnmarshalText (Duration,
// Prefix), whose message already says what a good value looks like.
func (d *decoder) text(path string, n ast.Node, v reflect.Value) {
	s, ok := scalarText(n)
	if !ok {
		d.errorf(n, path, "want a single value, got %s", describe(n))
		return
	}
	if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
		d.errorf(n, path, "%v", err)
	}
}

// scalarText is the text of a scalar node; numbers and booleans count, so
// an unquoted sysctl value 1 is the string "1".
func scalarText(n ast.Node) (string, bool) {
	switch t := n.(type) {
	case *ast.StringNode:
		return t.Value, true
	case *ast.LiteralNode:
		return t.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return n.GetToken().Value, true
	}
	return "", false
}

func (d *decoder) scalar(path string, n ast.Node, v reflect.Value) {
	if _, null := n.(*ast.NullNode); null {
		d.errorf(n, path, "no value; write one (\"\" for an empty string) or remove the key to keep the default")
		return
	}
	switch v.Kind() {
	case reflect.String:
		s, ok := scalarText(n)
		if !ok {
			d.errorf(n, path, "want a string, got %s", describe(n))
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok {
			d.errorf(n, path, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(b.Value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.integer(path, n, v)
	default:
		// Only reachable if policy.go gains a field of a new kind.
		d.errorf(n, path, "policies: field of unsupported Go kind %s", v.Kind())
	}
}

func (d *decoder) integer(path string, n ast.Node, v reflect.Value) {
	in, ok := n.(*ast.IntegerNode)
	if !ok {
		d.errorf(n, path, "want a whole number, got %s", describe(n))
		return
	}
	var neg bool
	var mag uint64
	switch x := in.Value.(type) {
	case int64:
		neg, mag = x < 0, uint64(x)
		if neg {
			mag = uint64(-x)
		}
	case uint64:
		mag = x
	default:
		d.errorf(n, path, "want a whole number, got %s", describe(n))
		return
	}
	lo, hi := intRange(v)
	switch {
	case v.CanUint() && neg, v.CanUint() && v.OverflowUint(mag):
		d.errorf(n, path, "number %s out of range (this field holds %s–%s)", in.GetToken().Value, lo, hi)
	case v.CanUint():
		v.SetUint(mag)
	case v.CanInt() && (mag > 1<<63-1 || v.OverflowInt(signed(neg, mag))):
		d.errorf(n, path, "number %s out of range (this field holds %s–%s)", in.GetToken().Value, lo, hi)
	default:
		v.SetInt(signed(neg, mag))
	}
}

func signed(neg bool, mag uint64) int64 {
	if neg {
		return -int64(mag)
	}
	return int64(mag)
}

func intRange(v reflect.Value) (string, string) {
	bits := v.Type().Bits()
	if v.CanUint() {
		return "0", fmt.Sprint(uint64(1)<<bits - 1)
	}
	return fmt.Sprint(-(int64(1) << (bits - 1))), fmt.Sprint(int64(1)<<(bits-1) - 1)
}

// describe names a node's kind and value for messages.
func describe(n ast.Node) string {
	switch t := n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode:
		return "no value"
	case *ast.StringNode:
		return fmt.Sprintf("the string %q", t.Value)
	case *ast.BoolNode:
		return fmt.Sprintf("the boolean %v", t.Value)
	case *ast.IntegerNode, *ast.FloatNode:
		return "the number " + n.GetToken().Value
	}
	return fmt.Sprintf("%q", n.GetToken().Value)
}
