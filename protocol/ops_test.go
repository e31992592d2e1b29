package protocol

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestOpsMatchTheContract keeps the one list of ops true to CONTRACT.md,
// and every op's args checked as their golden example decodes.
func TestOpsMatchTheContract(t *testing.T) {
	doc, err := os.ReadFile("CONTRACT.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?m)^\\| `op` \\| string \\| yes \\| ([a-z_, ]+) \\|$").FindSubmatch(doc)
	if m == nil {
		t.Fatal("CONTRACT.md: no op row in the command table")
	}
	ops := strings.Split(string(m[1]), ", ")
	if len(ops) != len(opArgs) {
		t.Errorf("contract ops %v, code knows %d", ops, len(opArgs))
	}
	for _, op := range ops {
		if !KnownOp(op) {
			t.Errorf("%s: in the contract, unknown here", op)
		}
		golden := filepath.Join("testdata", op+".args.json")
		if b, err := os.ReadFile(golden); err == nil {
			if err := CheckArgs(op, b); err != nil {
				t.Errorf("%s: %v", golden, err)
			}
		}
	}
	if KnownOp("selfdestruct") || CheckArgs("selfdestruct", nil) == nil {
		t.Error("an unknown op passed")
	}
}

func TestOperatorOps(t *testing.T) {
	var got []string
	for op := range opArgs {
		if OperatorOp(op) {
			got = append(got, op)
		}
	}
	slices.Sort(got)
	if want := []string{OpAmp, OpConfig, OpMute, OpReboot, OpTest, OpVolume}; !slices.Equal(got, want) {
		t.Errorf("operator ops %v, want %v", got, want)
	}
	if got, want := OperatorOps(), "volume, mute, amp, test, reboot or config"; got != want {
		t.Errorf("OperatorOps() = %q, want %q", got, want)
	}
	for _, c := range []struct {
		op, args string
		ok       bool
	}{
		{OpTest, "", true},
		{OpReboot, "", true},
		{OpVolume, "", false},
		{OpVolume, `{"level":101}`, false},
		{OpMute, `{}`, false},
		{OpConfig, `{"tele_interval_s":60,"delay_ms":200,"nope":1}`, false},
		{OpPlay, `{"session":"s"}`, false},
	} {
		if err := CheckArgs(c.op, []byte(c.args)); (err == nil) != c.ok {
			t.Errorf("CheckArgs(%s, %s) = %v", c.op, c.args, err)
		}
	}
}
