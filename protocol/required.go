package protocol

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
)

// A payload type's JSON tags are its contract: a field that is neither
// omitempty nor a pointer is required ("required: yes" in CONTRACT.md, the
// rule contract_test.go checks the examples with). Go's decoder leaves a
// missing field at its zero value, so without this check `tele {}` would
// read as a receiver at volume 0, −0 dBm, 0 °C at the Unix epoch.

// fieldRule is one JSON field of a payload type.
type fieldRule struct {
	name     string
	required bool
	nested   reflect.Type // a struct checked in turn when present; nil otherwise
}

var fieldRules sync.Map // reflect.Type → []fieldRule

func rulesOf(t reflect.Type) []fieldRule {
	if r, ok := fieldRules.Load(t); ok {
		return r.([]fieldRule)
	}
	var rules []fieldRule
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		r := fieldRule{name: name, required: !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer}
		if ft := f.Type; ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct {
			r.nested = ft.Elem()
		} else if ft.Kind() == reflect.Struct {
			r.nested = ft
		}
		rules = append(rules, r)
	}
	fieldRules.Store(t, rules)
	return rules
}

// missingField returns the dotted path of the first required field of t
// that the JSON object b lacks (or holds null), "" when none does.
func missingField(b []byte, t reflect.Type) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return "" // not an object: the struct decoder has refused it already
	}
	for _, r := range rulesOf(t) {
		raw, ok := m[r.name]
		if !ok || string(raw) == "null" {
			if r.required {
				return r.name
			}
			continue
		}
		if r.nested != nil {
			if sub := missingField(raw, r.nested); sub != "" {
				return r.name + "." + sub
			}
		}
	}
	return ""
}

// requireFields refuses a payload that lacks a required field of v's type
// (v a pointer to the struct b was decoded into).
func requireFields(kind string, b []byte, v any) error {
	if f := missingField(b, reflect.TypeOf(v).Elem()); f != "" {
		return errors.New(kind + ": " + f + " is required")
	}
	return nil
}
