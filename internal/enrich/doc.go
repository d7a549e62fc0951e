// Package enrich turns what a client sends at login into what a person can
// recognise in a "your devices" list: a parsed [Device] from the User-Agent
// header and a coarse [Location] from the client IP address.
//
// Everything here is untrusted input handling, so every function fails open:
// a bad user agent becomes "Unknown device", a missing, corrupt or slow GeoIP
// database becomes an empty Location, and nothing panics. Strings that come
// out are valid UTF-8 and bounded in length, so they can be stored and shown
// without further checks (they still need escaping when rendered as HTML).
//
// The GeoIP database is memory-mapped and reloads itself when the file is
// replaced. Replace it atomically (write a temporary file, then rename it over
// the old one), as MaxMind's geoipupdate does: rewriting a mapped file in place
// is what memory maps cannot survive, although [GeoIP.Lookup] turns the
// resulting fault into an empty Location instead of a crash.
package enrich
