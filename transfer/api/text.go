//go:build linux

package api

import (
	"cmp"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"
)

// checkText refuses text no legitimate client sends and PostgreSQL cannot
// store: invalid UTF-8, NUL, and the other C0 control characters except
// tab, newline and carriage return (a message body has lines). Without it
// a NUL reaches a query and the client gets a 500, or the audit row for
// the request cannot be written. The error names the field.
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: not valid UTF-8", field)
	}
	for _, c := range s {
		switch {
		case c == 0:
			return fmt.Errorf("%s: contains a NUL byte", field)
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r', c == 0x7f:
			return fmt.Errorf("%s: contains control character %U", field, c)
		}
	}
	return nil
}

// checkRequestText is middleware: the path and every query parameter pass
// checkText before any handler runs, so no handler has to remember it. A
// refusal is a 400 naming the field; nothing else happens. JSON bodies are
// checked by decodeJSON, HTML forms by checkFormText.
func checkRequestText(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := checkText("path", r.URL.Path)
		for k, vs := range r.URL.Query() {
			err = cmp.Or(err, checkValues("query parameter", k, vs))
		}
		if err != nil {
			fail(w, http.StatusBadRequest, "%v", err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkFormText wraps an HTML form handler: the form (at most 1 MiB) is
// parsed and every field passes checkText before h runs.
func checkFormText(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			fail(w, http.StatusBadRequest, "form: %v", err)
			return
		}
		var err error
		for k, vs := range r.PostForm {
			err = cmp.Or(err, checkValues("form field", k, vs))
		}
		if err != nil {
			fail(w, http.StatusBadRequest, "%v", err)
			return
		}
		h(w, r)
	}
}

// checkValues checks a parameter's name and values.
func checkValues(kind, k string, vs []string) error {
	if err := checkText(kind+" name", k); err != nil {
		return err
	}
	for _, v := range vs {
		if err := checkText(fmt.Sprintf("%s %q", kind, k), v); err != nil {
			return err
		}
	}
	return nil
}

// checkJSONText walks a decoded JSON request (structs of strings, string
// slices, numbers and bools) and checks every string, named by its JSON
// field: "recipients[2]: contains a NUL byte".
func checkJSONText(v any) error {
	return walkText(reflect.ValueOf(v), "body")
}

func walkText(v reflect.Value, name string) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return walkText(v.Elem(), name)
	case reflect.String:
		return checkText(name, v.String())
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := walkText(v.Index(i), fmt.Sprintf("%s[%d]", name, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if err := walkText(k, name+" key"); err != nil {
				return err
			}
			if err := walkText(v.MapIndex(k), fmt.Sprintf("%s[%v]", name, k)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			field := strings.Split(f.Tag.Get("json"), ",")[0]
			if field == "" {
				field = f.Name
			}
			if err := walkText(v.Field(i), field); err != nil {
				return err
			}
		}
	}
	return nil
}
