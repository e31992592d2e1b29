package api

// ParseRolloutRequest exposes the rollout request parser to the fuzz test.
var ParseRolloutRequest = parseRolloutRequest
