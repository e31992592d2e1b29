package api

// ValidateWithSpec wraps a handler so the external tests' requests and
// responses are checked against api/openapi.yaml too.
var ValidateWithSpec = validateWithSpec
