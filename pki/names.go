package pki

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
)

// DefaultNames are the server certificate's names when none are
// configured: the machine's hostname and loopback.
func DefaultNames() []string {
	names := []string{}
	if h, err := os.Hostname(); err == nil && CheckName(h) == nil {
		names = append(names, strings.ToLower(h))
	}
	for _, n := range []string{"localhost", "127.0.0.1", "::1"} {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// ParseNames splits a comma-separated list of names, dropping blanks.
func ParseNames(s string) []string {
	var names []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// CheckNames checks every name with CheckName.
func CheckNames(names []string) error {
	for _, n := range names {
		if err := CheckName(n); err != nil {
			return err
		}
	}
	return nil
}

// CheckName accepts an IP address or a DNS host name (letters, digits and
// hyphens in dot-separated labels).
func CheckName(n string) error {
	if net.ParseIP(n) != nil {
		return nil
	}
	bad := func(why string) error {
		return fmt.Errorf("tls-names: %q is neither an IP address nor a host name: %s", n, why)
	}
	if n == "" || len(n) > 253 {
		return bad("want 1..253 characters")
	}
	for _, label := range strings.Split(strings.TrimSuffix(n, "."), ".") {
		if label == "" || len(label) > 63 {
			return bad("each dot-separated label has 1..63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return bad("a label neither starts nor ends with a hyphen")
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return bad(fmt.Sprintf("%q is not a letter, digit or hyphen", c))
			}
		}
	}
	return nil
}

// canonicalNames is names as a certificate holds them, in order, each
// once: IPs in their canonical form, host names lower case.
func canonicalNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		} else {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
