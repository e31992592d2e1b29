package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"
)

// The spec, loaded and validated once per test binary.
var spec struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

func loadSpec(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	spec.once.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(OpenAPI)
		if err != nil {
			spec.err = fmt.Errorf("load openapi.yaml: %w", err)
			return
		}
		if err := doc.Validate(loader.Context); err != nil {
			spec.err = fmt.Errorf("openapi.yaml is not valid OpenAPI: %w", err)
			return
		}
		doc.Servers = nil // match paths whatever the test server's address
		if spec.router, err = legacyrouter.NewRouter(doc); err != nil {
			spec.err = fmt.Errorf("route openapi.yaml: %w", err)
			return
		}
		spec.doc = doc
		for _, ct := range []string{"text/event-stream", "application/sdp", "application/cap+xml", "application/xml", "text/xml", "application/trickle-ice-sdpfrag"} {
			openapi3filter.RegisterBodyDecoder(ct, rawBody)
		}
	})
	if spec.err != nil {
		t.Fatal(spec.err)
	}
	return spec.doc, spec.router
}

// rawBody decodes a text body the spec describes as a string.
func rawBody(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	b, err := io.ReadAll(r)
	return string(b), err
}

// specOptions check bodies, statuses and credentials; the handler, not
// the check, decides defaults.
var specOptions = &openapi3filter.Options{
	IncludeResponseStatus: true,
	SkipSettingDefaults:   true,
	MultiError:            true,
	AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
		r := in.RequestValidationInput.Request
		switch in.SecuritySchemeName {
		case "bearer":
			if scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") && secret != "" {
				return nil
			}
			return errors.New("no bearer token")
		case "cookie":
			if c, err := r.Cookie("loa_session"); err == nil && c.Value != "" {
				return nil
			}
			return errors.New("no session cookie")
		case "clientCert":
			if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
				return nil
			}
			return errors.New("no client certificate")
		case "accessToken":
			if r.URL.Query().Get("access_token") != "" {
				return nil
			}
			return errors.New("no access_token")
		case "device":
			if _, _, ok := r.BasicAuth(); ok {
				return nil
			}
			return errors.New("no HTTP Basic credentials")
		}
		return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
	},
}

// specCovers reports whether the spec describes path: everything but
// the UI.
func specCovers(path string) bool {
	return strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/fw/") || path == "/healthz" || path == "/metrics"
}

// maxCheckedBody bounds the request bodies the check reads; a larger one
// (an upload past its limit) goes to the handler with its body unchecked.
const maxCheckedBody = 1 << 20

// validateWithSpec wraps an API handler so every request and response is
// checked against api/openapi.yaml, failing t on any mismatch:
//   - a request the spec accepts must get a response the spec describes
//     (documented status, body matching its schema);
//   - a request the spec rejects must get a 4xx the spec describes: the
//     server must refuse what the spec refuses;
//   - a request no route of the spec matches must get the JSON 404 or 405.
func validateWithSpec(t testing.TB, h http.Handler) http.Handler {
	t.Helper()
	doc, router := loadSpec(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !specCovers(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		// Keep a copy of the body as the handler reads it (reading it first
		// would end the request's context early on a half-closed
		// connection), then read what the handler left, within a bound.
		var body bytes.Buffer
		var tee *teeBody
		if r.Body != nil {
			tee = &teeBody{r: r.Body, copy: &body}
			r.Body = tee
		}
		rec := &teeWriter{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		whole := true
		if tee != nil {
			if tee.err == nil {
				_, tee.err = io.Copy(io.Discard, io.LimitReader(tee, maxCheckedBody+1-int64(body.Len())))
			}
			whole = (tee.err == nil || tee.err == io.EOF) && body.Len() <= maxCheckedBody
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}

		probe := r.Clone(context.Background())
		probe.Body = io.NopCloser(bytes.NewReader(body.Bytes()))
		what := r.Method + " " + r.URL.RequestURI()
		route, params, routeErr := router.FindRoute(probe)
		var in *openapi3filter.RequestValidationInput
		var reqErr error
		if routeErr == nil {
			opts := *specOptions
			opts.ExcludeRequestBody = !whole
			in = &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route, Options: &opts}
			reqErr = openapi3filter.ValidateRequest(probe.Context(), in)
		}

		notRouted := status == http.StatusNotFound || status == http.StatusMethodNotAllowed
		switch {
		case routeErr != nil || reqErr != nil && notRouted:
			// No operation of the spec: the server's JSON 404 or 405.
			if !notRouted {
				t.Errorf("%s: the spec has no such route (%v), but the server answered %d", what, routeErr, status)
				return
			}
			var v any
			if err := json.Unmarshal(rec.body.Bytes(), &v); err != nil {
				t.Errorf("%s: %d body %q: %v", what, status, rec.body.Bytes(), err)
			} else if err := doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
				t.Errorf("%s: %d body is not an Error: %v", what, status, err)
			}
			return
		case reqErr != nil && (status < 400 || status > 499) && status != http.StatusServiceUnavailable:
			// 503: the service is not there to look at the request at all.
			t.Errorf("%s: the spec refuses this request, but the server answered %d:\n%v\nbody %s", what, status, reqErr, clip(rec.body.Bytes()))
		}
		got := rec.body.Bytes()
		if rec.Header().Get("Content-Encoding") == "gzip" { // the body as the client reads it
			zr, err := gzip.NewReader(bytes.NewReader(got))
			if err == nil {
				got, err = io.ReadAll(zr)
			}
			if err != nil {
				t.Errorf("%s: a gzip body that does not read: %v", what, err)
				return
			}
		}
		res := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: rec.Header(), Options: specOptions}
		res.SetBodyBytes(got)
		if err := openapi3filter.ValidateResponse(probe.Context(), res); err != nil {
			t.Errorf("%s: the response does not match the spec:\n%v\nstatus %d, body %s", what, err, status, clip(got))
		}
	})
}

func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// teeBody keeps a copy of what is read from a request body, and the
// first error.
type teeBody struct {
	r    io.ReadCloser
	copy *bytes.Buffer
	err  error
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.copy.Len() <= maxCheckedBody {
		b.copy.Write(p[:n])
	}
	if err != nil && b.err == nil {
		b.err = err
	}
	return n, err
}

func (b *teeBody) Close() error { return b.r.Close() }

// teeWriter passes a response through and keeps a copy for the check.
type teeWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *teeWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (SSE flushes, deadlines) reach the
// real writer.
func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestSpecDescribesEveryRoute checks that api/openapi.yaml describes each
// route the server registers, and nothing else.
func TestSpecDescribesEveryRoute(t *testing.T) {
	doc, _ := loadSpec(t)
	var served, described []string
	for _, r := range (&Server{}).routes() {
		served = append(served, r.pattern)
		method, path, _ := strings.Cut(r.pattern, " ")
		op := doc.Paths.Find(path).GetOperation(method)
		if op == nil {
			continue // reported below
		}
		perm, _ := op.Extensions["x-permission"].(string)
		if perm != r.action {
			t.Errorf("%s: x-permission %q in openapi.yaml, but the route needs %q", r.pattern, perm, r.action)
		}
		// No token: the operation says so with "security: []" (/fw/ and /cache/ have their own scheme).
		public := op.Security != nil && len(*op.Security) == 0
		if public != (r.action == "" && !strings.HasPrefix(path, "/fw/") && !strings.HasPrefix(path, "/cache/")) {
			t.Errorf("%s: public %v in openapi.yaml, but the route needs %q", r.pattern, public, r.action)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			described = append(described, method+" "+path)
		}
	}
	slices.Sort(served)
	slices.Sort(described)
	for _, p := range served {
		if !slices.Contains(described, p) {
			t.Errorf("served but not in openapi.yaml: %s", p)
		}
	}
	for _, p := range described {
		if !slices.Contains(served, p) {
			t.Errorf("in openapi.yaml but not served: %s", p)
		}
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %s, want 3.1.0", doc.OpenAPI)
	}
}

// TestSpecIsServed checks GET /api/v1/openapi.yaml: no token, the
// embedded document.
func TestSpecIsServed(t *testing.T) {
	srv := httptest.NewServer(validateWithSpec(t, (&Server{}).Handler()))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/api/v1/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !bytes.Equal(b, OpenAPI) || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/yaml") {
		t.Errorf("GET /api/v1/openapi.yaml: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(b))
	}
}
