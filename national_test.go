package loa_test

import (
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
)

const testCA = `-----BEGIN CERTIFICATE-----
MIIBhTCCASugAwIBAgIQIRi6zePL6mKjOipn+dNuaTAKBggqhkjOPQQDAjASMRAw
DgYDVQQKEwdBY21lIENvMB4XDTE3MTAyMDE5NDMwNloXDTE4MTAyMDE5NDMwNlow
EjEQMA4GA1UEChMHQWNtZSBDbzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABD0d
7VNhbWvZLWPuj/RtHFjvtJBEwOkhbN/BnnE8rnZR8+sbwnc/KhCk3FhnpHZnQz7B
5aETbbIgmuvewdjvSBSjYzBhMA4GA1UdDwEB/wQEAwICpDATBgNVHSUEDDAKBggr
BgEFBQcDATAPBgNVHRMBAf8EBTADAQH/MCkGA1UdEQQiMCCCDmxvY2FsaG9zdDo1
NDUzgg4xMjcuMC4wLjE6NTQ1MzAKBggqhkjOPQQDAgNIADBFAiEA2zpJEPQyz6/l
Wf86aX6PepsntZv2GYlA5UpabfT2EZICICpJ5h/iI+i341gBmLiAFQOyTDT+/wQc
6MF9+Yw1Yy0t
-----END CERTIFICATE-----
`

// Any province an admin sends is either refused with EINVALID or valid:
// an https URL, a certificate to trust.
func FuzzProvinceValidate(f *testing.F) {
	f.Add("qn", "Quảng Ngãi", "51", "https://loa.quangngai.gov.vn/", testCA)
	f.Add("qn", "Quảng Ngãi", "51", "http://loa.quangngai.gov.vn", testCA)
	f.Add("qn", "Quảng Ngãi", "", "https://x", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	f.Add("QN", "", "5 1", "https://u:p@x/?a#b", "garbage")
	f.Fuzz(func(t *testing.T, id, name, code, url, ca string) {
		p := &loa.Province{ID: id, Name: name, Code: code, URL: url, CAPEM: ca}
		err := p.Validate()
		if err != nil {
			if loa.ErrorCode(err) != loa.EINVALID {
				t.Fatalf("code %s: %v", loa.ErrorCode(err), err)
			}
			return
		}
		if !strings.HasPrefix(p.URL, "https://") || strings.HasSuffix(p.URL, "/") {
			t.Fatalf("url %q accepted", p.URL)
		}
		if certs, err := loa.ParseCAPEM(p.CAPEM); err != nil || len(certs) == 0 {
			t.Fatalf("ca_pem accepted without a certificate: %v", err)
		}
	})
}
