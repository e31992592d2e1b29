package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The types whose JSON fields CONTRACT.md must document, by kind.
var contractTypes = map[string]any{
	"status": Status{}, "cmd": Command{}, "play": PlayArgs{}, "stop": StopArgs{},
	"volume": VolumeArgs{}, "mute": MuteArgs{}, "amp": AmpArgs{}, "test": TestArgs{},
	"testresult": TestResult{}, "reboot": RebootArgs{}, "config": ConfigArgs{},
	"ack": Ack{}, "tele": Telemetry{}, "event": Event{}, "stream": StreamStats{},
	"firmware": FirmwareArgs{}, "fwprogress": FirmwareProgress{}, "fwresult": FirmwareResult{},
	"enrol": EnrolResponse{}, "enrolreq": EnrolRequest{},
}

type contractBlock struct {
	kind string
	line int
	body []byte
}

func readContract(t *testing.T) (blocks []contractBlock, tableFields map[string]bool) {
	t.Helper()
	doc, err := os.ReadFile("CONTRACT.md")
	if err != nil {
		t.Fatal(err)
	}
	kindRe := regexp.MustCompile(`^<!-- kind: (\S+) -->$`)
	rowRe := regexp.MustCompile("^\\| `([a-z_][a-z0-9_]*)` \\|")
	tableFields = map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(doc))
	var kind string
	var in *contractBlock
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case in != nil && line == "```":
			blocks = append(blocks, *in)
			in = nil
		case in != nil:
			in.body = append(in.body, line+"\n"...)
		case line == "```json":
			if kind == "" {
				t.Errorf("CONTRACT.md:%d: json block without a <!-- kind: --> line before it", n)
			}
			in = &contractBlock{kind: kind, line: n}
			kind = ""
		case kindRe.MatchString(line):
			kind = kindRe.FindStringSubmatch(line)[1]
		default:
			if m := rowRe.FindStringSubmatch(line); m != nil {
				tableFields[m[1]] = true
			}
			if strings.TrimSpace(line) != "" {
				kind = ""
			}
		}
	}
	if in != nil {
		t.Errorf("CONTRACT.md:%d: unterminated json block", in.line)
	}
	return blocks, tableFields
}

// jsonFields returns the JSON names of t's fields and whether each is
// required (neither omitempty nor a pointer).
func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer
	}
	return out
}

// Every example in CONTRACT.md decodes with its kind's decoder, has no
// field the Go type lacks and every field the Go type requires.
func TestContractExamples(t *testing.T) {
	blocks, _ := readContract(t)
	seen := map[string]bool{}
	for _, b := range blocks {
		dec, ok := decoders[b.kind]
		if !ok {
			t.Errorf("CONTRACT.md:%d: unknown kind %q", b.line, b.kind)
			continue
		}
		seen[b.kind] = true
		got, err := dec(bytes.TrimSpace(b.body))
		if err != nil {
			t.Errorf("CONTRACT.md:%d: %v", b.line, err)
			continue
		}
		checkStrict(t, b.line, "", reflect.TypeOf(got), b.body)
	}
	for kind := range decoders {
		if !seen[kind] {
			t.Errorf("CONTRACT.md has no example of kind %q", kind)
		}
	}
}

// checkStrict decodes body into a fresh value of typ refusing unknown
// fields, and checks required fields are present, recursing into nested
// structs.
func checkStrict(t *testing.T, line int, path string, typ reflect.Type, body []byte) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct {
		return
	}
	v := reflect.New(typ).Interface()
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Errorf("CONTRACT.md:%d: %s%v", line, path, err)
		return
	}
	var m map[string]json.RawMessage
	json.Unmarshal(body, &m)
	fields := jsonFields(typ)
	for name, required := range fields {
		if required {
			if _, ok := m[name]; !ok {
				t.Errorf("CONTRACT.md:%d: %srequired field %q missing", line, path, name)
			}
		}
	}
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if raw, ok := m[name]; ok && f.IsExported() {
			checkStrict(t, line, path+name+".", f.Type, raw)
		}
	}
	// An Ack's result is a TestResult in this contract version.
	if typ == reflect.TypeOf(Ack{}) {
		if raw, ok := m["result"]; ok {
			checkStrict(t, line, path+"result.", reflect.TypeOf(TestResult{}), raw)
		}
	}
}

// Every JSON field of every payload type appears in a field table of
// CONTRACT.md, so the page cannot silently fall behind the types.
func TestContractFieldTables(t *testing.T) {
	_, documented := readContract(t)
	for kind, v := range contractTypes {
		for name := range jsonFields(reflect.TypeOf(v)) {
			if !documented[name] {
				t.Errorf("%s field %q is not in a CONTRACT.md field table", kind, name)
			}
		}
	}
}

// The topic table lists every kind with the QoS the code fixes.
func TestContractTopicTable(t *testing.T) {
	doc, err := os.ReadFile("CONTRACT.md")
	if err != nil {
		t.Fatal(err)
	}
	for kind, q := range QoS {
		retained := "no"
		if kind == KindStatus {
			retained = "yes"
		}
		re := regexp.MustCompile("\\| `" + regexp.QuoteMeta(DeviceTopic("{id}", kind)) + "` \\| [^|]+ \\| " +
			string('0'+rune(q)) + " \\| " + retained + " \\|")
		if !re.Match(doc) {
			t.Errorf("CONTRACT.md topic table: no row for %s with QoS %d, retained %s", kind, q, retained)
		}
	}
}

// contractDecoded are the kinds whose decoders ignore unknown fields and
// enforce the required ones by the type's tags; the strict args decoders
// check theirs by hand.
var contractDecoded = []string{"status", "cmd", "play", "stop", "volume", "ack", "tele", "event"}

// Every required field of every example, nested ones included, is
// enforced: the example without it, or with it null, is refused, and the
// error names it. `tele {}` must not read as a receiver at volume 0.
func TestContractRequiredFieldsEnforced(t *testing.T) {
	blocks, _ := readContract(t)
	checked := 0
	for _, b := range blocks {
		if !slices.Contains(contractDecoded, b.kind) {
			continue
		}
		dec := decoders[b.kind]
		got, err := dec(bytes.TrimSpace(b.body))
		if err != nil {
			continue // TestContractExamples reports it
		}
		var doc map[string]any
		if err := json.Unmarshal(b.body, &doc); err != nil {
			t.Fatal(err)
		}
		for _, path := range requiredPaths(reflect.TypeOf(got), doc, "") {
			for _, how := range []string{"missing", "null"} {
				mutated := mutate(doc, strings.Split(path, "."), how == "null")
				body, _ := json.Marshal(mutated)
				_, err := dec(body)
				if err == nil || !strings.Contains(err.Error(), path) {
					t.Errorf("CONTRACT.md:%d: %s with %s %s: err %v, want one naming it", b.line, b.kind, path, how, err)
				}
				checked++
			}
		}
		if _, err := dec([]byte(`{}`)); err == nil && slices.Contains(slices.Collect(maps.Values(jsonFields(reflect.TypeOf(got)))), true) {
			t.Errorf("%s: {} accepted", b.kind)
		}
	}
	if checked == 0 {
		t.Fatal("no required field checked")
	}
}

// requiredPaths lists the dotted paths of the required fields of typ that
// doc holds, recursing into nested objects present in doc.
func requiredPaths(typ reflect.Type, doc map[string]any, prefix string) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	var out []string
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		v, ok := doc[name]
		if !ok {
			continue
		}
		if jsonFields(typ)[name] {
			out = append(out, prefix+name)
		}
		if sub, ok := v.(map[string]any); ok {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, requiredPaths(ft, sub, prefix+name+".")...)
			}
		}
	}
	return out
}

// mutate returns a deep copy of doc with the field at path removed, or set
// to null.
func mutate(doc map[string]any, path []string, null bool) map[string]any {
	out := make(map[string]any, len(doc))
	for k, v := range doc {
		out[k] = v
	}
	if len(path) == 1 {
		if null {
			out[path[0]] = nil
		} else {
			delete(out, path[0])
		}
		return out
	}
	out[path[0]] = mutate(doc[path[0]].(map[string]any), path[1:], null)
	return out
}
