package loa

// PlayAiredFromCache: one receiver (Devices) reported playing a scheduled
// programme from its cache while the controller's stream did not reach
// it (contract: Programmes from cache); Detail says how many frames.
const PlayAiredFromCache = "aired_from_cache"

// EvidenceCache: the receiver's delivery is known from its from_cache
// report: it played its cached copy of the programme (a stream that took
// over afterwards makes it EvidenceEvent again with its finished event).
const EvidenceCache = "cache"
