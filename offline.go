package loa

// PlayAiredFromCache: one receiver (Devices) reported playing a scheduled
// programme from its cache while the controller's stream did not reach
// it (contract: Programmes from cache); Detail says how many frames.
const PlayAiredFromCache = "aired_from_cache"
